"""Sign-in for the dashboard when it listens beyond loopback.

On 127.0.0.1 the dashboard is as private as the machine. Bound to another address (or to every
interface) anyone on the network could read the shop's sales and customers, so each browser session
must first enter the workspace's API key (the one `watershop api` requires: $WATERSHOP_API_KEY or
`serving.api_key`). Without a key configured the dashboard refuses to show anything there.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import streamlit as st

from watershop_dagster.serving.settings import API_KEY_ENV_VAR, is_loopback

SESSION_KEY = "watershop_signed_in"
WRONG_KEY_DELAY_S = 1.0  # slows guessing; one session's reruns are sequential


def _fingerprint(key: str) -> str:
    """What the session remembers: a changed key signs every session out."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(supplied: str | None, key: str) -> bool:
    return bool(supplied) and hmac.compare_digest(supplied.encode(), key.encode())


def require_sign_in(key: str | None, host: str | None) -> None:
    """Return when this session may see the dashboard; otherwise show the sign-in form and stop the run."""
    if is_loopback(host):
        return
    where = host or "every network interface"
    if not key:
        st.error(f"This dashboard listens on {where} but no API key is configured: set {API_KEY_ENV_VAR} "
                 "(or serving.api_key) and restart it, or bind it to 127.0.0.1.")
        st.stop()
    if st.session_state.get(SESSION_KEY) == _fingerprint(key):
        with st.sidebar:
            if st.button("Sign out", icon=":material/logout:"):
                del st.session_state[SESSION_KEY]
                st.rerun()
        return
    st.markdown("### Watershop sign-in")
    st.caption(f"This dashboard listens on {where}. Enter the workspace API key to continue.")
    with st.form("sign_in"):
        supplied = st.text_input("API key", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if key_matches(supplied, key):
            st.session_state[SESSION_KEY] = _fingerprint(key)
            st.rerun()
        time.sleep(WRONG_KEY_DELAY_S)
        st.error("Wrong API key.")
    st.stop()

-- The run's shop's transactions, each attributed to a buyer "by registry customer": a bill linked
-- to a visit (transaction_visit_links) counts for that visit's registry customer, any other one for
-- its POS customer id (buyer_id_kind says which; null for an unlinked walk-in). Shared by
-- total_spent and repeat_defaulters, so both attribute a bill the same way.
{{ config(materialized='ephemeral') }}

with transactions as (

    select *
    from {{ ref('transactions') }}
    where {{ partition_filter('shop') }}

),

links as (

    select shop_id, date, transaction_id, customer_id
    from {{ ref('transaction_visit_links') }}
    where visit_id is not null
      and {{ partition_filter('shop') }}

),

final as (

    select
        transactions.*,
        coalesce(links.customer_id, transactions.customer_id)                       as buyer_id,
        case when links.customer_id is not null then 'registry' else 'pos' end      as buyer_id_kind
    from transactions
    left join links
        on links.shop_id = transactions.shop_id
       and links.date = transactions.date
       and links.transaction_id = transactions.transaction_id

)

select * from final

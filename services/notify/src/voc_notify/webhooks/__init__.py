"""Outbound webhooks (#19): outside systems (a CRM, a helpdesk, Slack, Teams, a warehouse) hear
what happens, signed per the Standard Webhooks specification.

`catalog` maps bus events to webhook types and payloads (ids and masked personal data only);
`enqueue` turns events into one delivery per subscribed endpoint, in the transaction that made
them; `dispatch` sends due deliveries (leases, retries with back-off for 24 h, the endpoint
disabled after 24 h of failures or at once on 410) through `sender` (the URL policy of
`targets`, 5 s timeout, no redirects) in the shape of `formats`; `registry` is the admin API's
domain; `secrets` makes, stores and signs with the `whsec_` secrets.
"""

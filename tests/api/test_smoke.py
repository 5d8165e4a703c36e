from tests.support.factories import heartbeat, register_provider, register_renter


async def test_register_and_me(client, admin):
    renter = await register_renter(client)
    me = await client.get("/api/renters/me", headers=renter.renter_headers)
    assert me.status_code == 200, me.text
    provider = await register_provider(client)
    hb = await heartbeat(client, provider)
    assert hb.status_code == 200, hb.text
    dash = await client.get("/api/dc1/admin/dashboard", headers=admin)
    assert dash.status_code == 200, dash.text
    print(dash.json())

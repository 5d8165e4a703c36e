"""The pages' lists: their page links keep the list's filters."""

from __future__ import annotations

import re

import httpx

from tests.support.factories import funded_renter, llm_job, online_provider, submit
from tests.web.test_security import _csrf


async def _signed_in(client: httpx.AsyncClient, key: str) -> None:
    answer = await client.post("/signin", data={"csrf": await _csrf(client, "/signin"), "key": key})
    assert answer.status_code == 303, answer.text


async def test_the_next_page_of_a_filtered_list_keeps_its_filter(client, admin):
    renter = await funded_renter(client, admin)
    provider = await online_provider(client)
    jobs = [(await submit(client, renter, llm_job(provider_id=provider.id))).json()["job"] for _ in range(3)]
    for job in jobs[:2]:
        await client.post(f"/api/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
    await _signed_in(client, renter.key)
    first = await client.get("/renter/jobs", params={"status": "cancelled", "limit": 1})
    [next_link] = re.findall(r'<a href="(\?[^"]*offset=1[^"]*)"', first.text)
    assert next_link.replace("&amp;", "&") == "?status=cancelled&offset=1&limit=1"
    second = await client.get("/renter/jobs" + next_link.replace("&amp;", "&"))
    assert second.status_code == 200
    assert jobs[0]["job_id"] in second.text and jobs[2]["job_id"] not in second.text  # cancelled ones only


async def test_a_list_asked_for_with_values_it_cannot_take_answers_a_page(client, admin):
    renter = await funded_renter(client, admin)
    await _signed_in(client, renter.key)
    for lang, text in (("en", "Some of the values are not valid."), ("ar", 'lang="ar"')):
        client.cookies.set("dcp_lang", lang)
        for path in ("/renter/jobs?limit=abc", "/renter/statement?from=2024-13-01"):
            answer = await client.get(path, headers={"accept": "text/html"})
            assert answer.status_code == 400 and answer.headers["content-type"].startswith("text/html")
            assert text in answer.text, (lang, path)
    api = await client.get("/api/jobs/history?limit=abc", headers=renter.renter_headers)
    assert api.status_code == 400 and "limit" in api.json()["error"]  # the API keeps its JSON


async def test_a_form_posted_after_the_session_ended_leads_back_to_its_page(client, admin):
    renter = await funded_renter(client, admin)
    provider = await online_provider(client)
    job = (await submit(client, renter, llm_job(provider_id=provider.id))).json()["job"]
    job_page = f"http://testserver/renter/jobs/{job['job_id']}"
    token = await _csrf(client, "/signin")  # signed out: the session ended
    answer = await client.post(
        f"/renter/jobs/{job['job_id']}/cancel", data={"csrf": token}, headers={"referer": job_page}
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/signin?next=/renter/jobs/{job['job_id']}"  # not the form's URL
    elsewhere = await client.post(
        f"/renter/jobs/{job['job_id']}/cancel",
        data={"csrf": token},
        headers={"referer": "https://evil.test/x"},
    )
    assert elsewhere.headers["location"] == "/signin?next=/renter"

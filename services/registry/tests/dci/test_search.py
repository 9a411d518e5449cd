"""SPDCI search through HTTP (``POST /spdci/v1.0.0/registry/sync/search``): requests built from
the spec's own examples, batches of several items, projection by the token's scopes, region
restriction and audit; every answer is validated against the spec and its signature checked."""

from __future__ import annotations

from typing import Any

from registry.dci import spec
from registry.settings import RegistrySettings
from shared.testing import RunningService, fetch

from .conftest import RegistryKey, Sender
from .registry_data import (
    BALIKPAPAN,
    READ,
    SAMARINDA,
    Headers,
    family,
    fresh_village,
    identifiers,
    predicate,
)

SYNC_SEARCH = "/registry/sync/search"
_QUERY = (
    "components",
    "schemas",
    "SearchRequest",
    "properties",
    "search_request",
    "items",
    "properties",
    "search_criteria",
    "properties",
)
_FILTER = ("components", "schemas", "SubscriptionInfo", "properties", "filter", "anyOf")


def criteria(query: Any, query_type: str, **more: Any) -> dict[str, Any]:
    return {
        "search_criteria": {
            "version": "1.0.0",
            "reg_type": spec.example(
                "components", "schemas", "SubscriptionInfo", "properties", "reg_type", "example"
            ),
            "query_type": query_type,
            "query": query,
            **more,
        }
    }


async def search(
    sender: Sender, registry_key: RegistryKey, *items: dict[str, Any]
) -> list[dict[str, Any]]:
    """The search_response items of a signed sync search, after checking the whole answer."""
    response = await sender.search(*items)
    assert response.status_code == 200, response.text
    body = response.json()
    spec.validate_response(SYNC_SEARCH, body)
    registry_key.verify(body)
    assert body["header"]["action"] == "on-search"
    answers: list[dict[str, Any]] = body["message"]["search_response"]
    assert len(answers) == len(items)
    return answers


class TestTheSpecsOwnExamples:
    async def test_expression_example_round_trips(
        self, dci_sender: Sender, registry_key: RegistryKey
    ) -> None:
        # {"expression": {"collection": "Group", "query": {"$and": [poverty_score < 5,
        #  location = central_region, group_size < 5]}}}: no region bears that name, so the
        # answer is a valid, empty success rather than a rejection.
        query_spec = (*_QUERY, "query", "anyOf", 0, "properties")
        query = {
            "type": spec.example(*query_spec, "type", "example"),
            "value": spec.example(*query_spec, "value", "example"),
        }
        assert query["value"]["expression"]["collection"] == "Group"
        [answer] = await search(
            dci_sender,
            registry_key,
            criteria(query, spec.example(*_QUERY, "query_type", "example")),
        )
        assert answer["status"] == "succ", answer
        assert answer["data"]["reg_record_type"] == "Group"
        assert answer["data"]["reg_records"] == []
        assert answer["pagination"]["total_count"] == 0

    async def test_expression_example_finds_what_it_describes(
        self,
        dci_sender: Sender,
        registry_key: RegistryKey,
        registry_service: RunningService,
        auth_header: Headers,
    ) -> None:
        village, village_name = fresh_village()
        poor = await family(registry_service, auth_header, village=village, decile=2, children=1)
        await family(registry_service, auth_header, village=village, decile=6, children=1)
        query_spec = (*_QUERY, "query", "anyOf", 0, "properties")
        value = spec.example(*query_spec, "value", "example")
        for condition in value["expression"]["query"]["$and"]:
            if "location" in condition:  # the example's place, made one of ours (by name)
                condition["location"]["$eq"] = village_name
        [answer] = await search(
            dci_sender,
            registry_key,
            criteria({"type": "ns:org:QueryType:expression", "value": value}, "expression"),
        )
        assert [
            identifiers(g, "group_identifier")["KK"] for g in answer["data"]["reg_records"]
        ] == [poor["kk"]]

    async def test_idtype_value_example(
        self,
        dci_sender: Sender,
        registry_key: RegistryKey,
        registry_service: RunningService,
        auth_header: Headers,
    ) -> None:
        id_spec = (*_FILTER, 1, "properties")
        id_type = spec.example(*id_spec, "type", "example")  # "UIN"
        household = await family(registry_service, auth_header, village=fresh_village()[0])
        found, malformed = await search(
            dci_sender,
            registry_key,
            criteria({"type": id_type, "value": household["head"]["nik"]}, "idtype-value"),
            # The spec's sample value has 11 digits: not a NIK.
            criteria(
                {"type": id_type, "value": spec.example(*id_spec, "value", "example")},
                "idtype-value",
            ),
        )
        assert found["status"] == "succ", found
        [member] = found["data"]["reg_records"]
        assert identifiers(member, "member_identifier")["NIK"] == household["head"]["nik"]
        assert malformed["status"] == "rjct"
        assert malformed["status_reason_code"] == "rjct.filter.invalid"

    async def test_predicate_sort_and_pagination_examples(
        self,
        dci_sender: Sender,
        registry_key: RegistryKey,
        registry_service: RunningService,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=0)
        expression = (*_FILTER, 2, "items", "properties", "expression1", "properties")
        example = {
            name: spec.example(*expression, name, "example")
            for name in ("attribute_name", "operator")
        }
        # attribute_value is a $ref to the identifier value, whose example is "1980"
        example["attribute_value"] = spec.example(
            *_FILTER, 1, "properties", "value", "allOf", 1, "example"
        )
        assert example == {"attribute_name": "YOB", "operator": "eq", "attribute_value": "1980"}
        query = [
            {
                "seq_num": spec.example(*_FILTER, 2, "items", "properties", "seq_num", "example"),
                "expression1": example,
                "condition": "and",
                "expression2": {
                    "attribute_name": "location",
                    "operator": "eq",
                    "attribute_value": village,
                },
            }
        ]
        sort = [
            {
                "attribute_name": spec.example(
                    *_QUERY, "sort", "items", "properties", "attribute_name", "example"
                ),
                "sort_order": "asc",
            }
        ]
        pages = (*_QUERY, "pagination", "properties")
        example_page = {
            "page_size": spec.example(*pages, "page_size", "example"),
            "page_number": spec.example(*pages, "page_number", "example"),
        }
        answered, too_big = await search(
            dci_sender,
            registry_key,
            criteria(query, "predicate", response_entity="Member", sort=sort),
            # page_size 2000 is above the registry's cap of 1,000 per page.
            criteria(query, "predicate", response_entity="Member", pagination=example_page),
        )
        assert answered["status"] == "succ", answered
        [head] = answered["data"]["reg_records"]
        assert identifiers(head, "member_identifier")["PERSON_ID"] == household["head"]["id"]
        assert too_big["status_reason_code"] == "rjct.pagination.invalid"


class TestBatches:
    async def test_each_item_is_answered_on_its_own(
        self,
        dci_sender: Sender,
        registry_key: RegistryKey,
        registry_service: RunningService,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=2)
        items = [
            criteria({"type": "KK", "value": household["kk"]}, "idtype-value"),
            criteria({"type": "NIK", "value": household["spouse"]["nik"]}, "idtype-value"),
            criteria({"type": "BRN", "value": "1"}, "idtype-value"),
            criteria(
                predicate(("location", "eq", village), ("relationship_head", "eq", "child")),
                "predicate",
                response_entity="Member",
                sort=[{"attribute_name": "YOB", "sort_order": "asc"}],
                pagination={"page_size": 1, "page_number": 2},
            ),
            criteria(predicate(("location", "eq", village)), "predicate", sort=[{"x": 1}]),
        ]
        group, spouse, unheld, second_child, bad_sort = await search(
            dci_sender, registry_key, *items
        )
        assert group["data"]["reg_records"][0]["group_size"] == 4
        assert (
            identifiers(spouse["data"]["reg_records"][0], "member_identifier")["NIK"]
            == (household["spouse"]["nik"])
        )
        assert unheld["status_reason_code"] == "rjct.search_criteria.invalid"
        assert second_child["pagination"] == {"page_size": 1, "page_number": 2, "total_count": 2}
        [child] = second_child["data"]["reg_records"]
        # Sorted by birth year, the older child (aged 6) comes first, so page 2 is the younger.
        assert identifiers(child, "member_identifier")["NIK"] == household["children"][1]["nik"]
        assert bad_sort["status_reason_code"] == "rjct.sort.invalid"


class TestRightsOfTheToken:
    async def test_projection_follows_the_token_s_scopes(
        self,
        dci_sender: Sender,
        registry_key: RegistryKey,
        registry_service: RunningService,
        auth_header: Headers,
    ) -> None:
        household = await family(registry_service, auth_header, village=fresh_village()[0])
        dci_sender.scopes = (READ,)
        [answer] = await search(
            dci_sender,
            registry_key,
            criteria({"type": "KK", "value": household["kk"]}, "idtype-value"),
        )
        [group] = answer["data"]["reg_records"]
        assert identifiers(group, "group_identifier") == {"HOUSEHOLD_ID": household["id"]}
        assert "poverty_score" not in group
        for member in group["member_list"]:
            assert set(identifiers(member, "member_identifier")) == {"PERSON_ID"}
            assert "name" not in member["demographic_info"]

    async def test_a_regional_token_cannot_tell_outside_records_from_missing_ones(
        self,
        dci_sender: Sender,
        registry_key: RegistryKey,
        registry_service: RunningService,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village(SAMARINDA)
        household = await family(registry_service, auth_header, village=village)
        dci_sender.regions = (BALIKPAPAN,)
        outside, missing = await search(
            dci_sender,
            registry_key,
            criteria({"type": "NIK", "value": household["head"]["nik"]}, "idtype-value"),
            criteria({"type": "NIK", "value": "6472010101000000"}, "idtype-value"),
        )
        for answer in (outside, missing):
            assert answer["status"] == "succ"
            assert answer["data"]["reg_records"] == []
            assert answer["pagination"]["total_count"] == 0

    async def test_reads_are_audited_with_the_consent_purpose(
        self,
        dci_sender: Sender,
        registry_key: RegistryKey,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        household = await family(
            registry_service, auth_header, village=fresh_village()[0], children=0
        )
        consent = {
            "@type": "Consent",
            "ts": "2026-11-25T09:00:00Z",
            "purpose": {"text": "PBI-JK premium verification", "code": "PBI"},
        }
        [answer] = await search(
            dci_sender,
            registry_key,
            criteria({"type": "KK", "value": household["kk"]}, "idtype-value", consent=consent),
        )
        assert answer["status"] == "succ"
        rows = await fetch(
            registry_settings,
            "SELECT agency, purpose, resource_type, resource_id FROM audit_log"
            " WHERE resource_id = ANY($1::text[])",
            [household["id"], household["head"]["id"], household["spouse"]["id"]],
        )
        assert sorted((r["resource_type"], r["resource_id"]) for r in rows) == sorted(
            [
                ("household", household["id"]),
                ("person", household["head"]["id"]),
                ("person", household["spouse"]["id"]),
            ]
        )
        assert {r["agency"] for r in rows} == {dci_sender.agency}
        assert all("PBI-JK premium verification" in r["purpose"] for r in rows)

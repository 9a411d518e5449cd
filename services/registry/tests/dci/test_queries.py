"""SPDCI search items answered from the registry: query types, sort, pages, rejections,
projection by scope, region restriction and the audit log (``registry.dci.search`` and
``registry.dci.criteria`` directly, in a transaction of the running app, as the endpoints call
them)."""

from __future__ import annotations

from typing import Any

import pytest

from registry.dci.criteria import check_subscription
from registry.dci.filters import MAX_PAGE_SIZE, MAX_UNPAGINATED_RECORDS, ItemRejected
from registry.dci.search import answer_search_item
from registry.settings import RegistrySettings
from shared.auth import Caller
from shared.testing import RunningService, fetch

from .registry_data import (
    ALL_READ,
    BALIKPAPAN,
    IDENTITY,
    READ,
    SAMARINDA,
    SOCIOECONOMIC,
    Headers,
    add_person,
    caller,
    family,
    fresh_village,
    identifiers,
    item,
    predicate,
)

PURPOSE = "DCI search by a test sender"


async def answer(
    service: RunningService, search_item: dict[str, Any], who: Caller | None = None
) -> dict[str, Any]:
    async with service.runtime.sessionmaker() as session, session.begin():
        return await answer_search_item(
            session, caller=who or caller(), item=search_item, purpose=PURPOSE
        )


def succeeded(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["status"] == "succ", response
    records: list[dict[str, Any]] = response["data"]["reg_records"]
    return records


def rejected(response: dict[str, Any], code: str) -> str:
    assert response["status"] == "rjct", response
    assert response["status_reason_code"] == code, response
    assert "data" not in response
    message: str = response["status_reason_message"]
    return message


class TestIdtypeValue:
    async def test_nik_finds_the_member_with_its_identifiers(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, village_name = fresh_village()
        household = await family(registry_service, auth_header, village=village, decile=3)
        head = household["head"]
        response = await answer(
            registry_service,
            item({"type": "NIK", "value": head["nik"]}, query_type="idtype-value"),
        )
        [member] = succeeded(response)
        assert response["data"]["reg_record_type"] == "Member"
        assert response["pagination"] == {"page_size": 1000, "page_number": 1, "total_count": 1}
        assert response["locale"] == "eng"
        assert identifiers(member, "member_identifier") == {
            "NIK": head["nik"],
            "PERSON_ID": head["id"],
        }
        person = member["demographic_info"]
        assert person["name"] == {"@type": "Name", "given_name": "Budi Santoso"}
        assert person["sex"] == "male"
        assert person["birth_date"] == "1980-03-15"
        assert person["address"]["street_address"] == "Jl. Mulawarman No. 7"
        assert person["address"]["locality"] == village_name
        assert person["address"]["city"] == "Kota Balikpapan"
        assert member["relationship_head"] == "head"
        assert member["is_disabled"] is False
        assert member["poverty_score"] == 3
        assert member["poverty_score_type"] == "DTSEN_DECILE_1_10"
        attributes = {
            a["attribute_name"]: a["attribute_value"] for a in member["additional_attributes"]
        }
        assert attributes["location"] == village
        assert attributes["KK"] == household["kk"]
        assert attributes["status"] == "alive"

    @pytest.mark.parametrize("id_type", ["UIN", "NationalID", "spdci:IdentifierType:NIK", "nik"])
    async def test_the_spec_s_identifier_names_mean_nik(
        self, registry_service: RunningService, auth_header: Headers, id_type: str
    ) -> None:
        village, _ = fresh_village()
        person = await add_person(registry_service, auth_header, village=village)
        response = await answer(
            registry_service,
            item({"type": id_type, "value": person["nik"]}, query_type="idtype-value"),
        )
        [member] = succeeded(response)
        assert identifiers(member, "member_identifier")["PERSON_ID"] == person["id"]

    async def test_kk_finds_the_group_with_its_members_head_first(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, village_name = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=2)
        response = await answer(
            registry_service,
            item({"type": "KK", "value": household["kk"]}, query_type="idtype-value"),
        )
        [group] = succeeded(response)
        assert response["data"]["reg_record_type"] == "Group"
        assert identifiers(group, "group_identifier") == {
            "KK": household["kk"],
            "HOUSEHOLD_ID": household["id"],
        }
        assert group["poverty_score"] == 2
        assert group["poverty_score_type"] == "DTSEN_DECILE_1_10"
        assert group["group_size"] == 4
        assert group["place"]["address"].startswith(f"Jl. Mulawarman No. 7, {village_name}, ")
        assert group["place"]["address"].endswith("Kalimantan Timur")
        names = [m["demographic_info"]["name"]["given_name"] for m in group["member_list"]]
        assert names[:2] == ["Budi Santoso", "Sri Wahyuni"]
        assert sorted(names[2:]) == ["Anak 1", "Anak 2"]
        assert (
            identifiers(group["group_head_info"], "member_identifier")["NIK"]
            == (household["head"]["nik"])
        )

    async def test_an_unknown_nik_is_an_empty_success(
        self, registry_service: RunningService
    ) -> None:
        response = await answer(
            registry_service,
            item({"type": "NIK", "value": "6471010101000000"}, query_type="idtype-value"),
        )
        assert succeeded(response) == []
        assert response["pagination"]["total_count"] == 0

    @pytest.mark.parametrize("id_type", ["BRN", "MRN", "DRN", "MOBILE"])
    async def test_identifiers_the_registry_does_not_hold_are_rejected(
        self, registry_service: RunningService, id_type: str
    ) -> None:
        response = await answer(
            registry_service,
            item({"type": id_type, "value": "847951632"}, query_type="idtype-value"),
        )
        assert id_type in rejected(response, "rjct.search_criteria.invalid")

    async def test_a_malformed_nik_is_a_filter_rejection(
        self, registry_service: RunningService
    ) -> None:
        response = await answer(
            registry_service, item({"type": "NIK", "value": "12345"}, query_type="idtype-value")
        )
        assert "16 digits" in rejected(response, "rjct.filter.invalid")


class TestPredicate:
    async def test_decile_age_sex_and_household_size(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        poor = await family(registry_service, auth_header, village=village, decile=1, children=2)
        await family(registry_service, auth_header, village=village, decile=7, children=2)
        small = await family(registry_service, auth_header, village=village, decile=2, children=0)
        groups = succeeded(
            await answer(
                registry_service,
                item(
                    predicate(("location", "eq", village), ("poverty_score", "le", 3)),
                    query_type="predicate",
                    response_entity="Group",
                ),
            )
        )
        assert {identifiers(g, "group_identifier")["KK"] for g in groups} == {
            poor["kk"],
            small["kk"],
        }
        big_and_poor = succeeded(
            await answer(
                registry_service,
                item(
                    predicate(
                        ("location", "eq", village),
                        ("poverty_score", "lt", 5),
                        ("group_size", "ge", 3),
                    ),
                    query_type="predicate",
                    response_entity="Group",
                ),
            )
        )
        assert [identifiers(g, "group_identifier")["KK"] for g in big_and_poor] == [poor["kk"]]
        # Members: girls under 10 in poor households of the village.
        girls = succeeded(
            await answer(
                registry_service,
                item(
                    predicate(
                        ("location", "eq", village),
                        ("age", "lt", 10),
                        ("sex", "eq", "female"),
                        ("poverty_score", "le", 3),
                    ),
                    query_type="predicate",
                    response_entity="Member",
                ),
            )
        )
        assert [identifiers(m, "member_identifier")["NIK"] for m in girls] == [
            poor["children"][1]["nik"]
        ]

    async def test_conditions_or_and_not_within_an_entry(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=1)
        query = [
            {
                "seq_num": 2,
                "expression1": {
                    "attribute_name": "YOB",
                    "operator": "eq",
                    "attribute_value": "1980",
                },
                "condition": "or",
                "expression2": {"attribute_name": "YOB", "operator": "eq", "attribute_value": 1983},
            },
            {
                "seq_num": 1,
                "expression1": {
                    "attribute_name": "location",
                    "operator": "eq",
                    "attribute_value": village,
                },
                "condition": "not",
                "expression2": {"attribute_name": "sex", "operator": "eq", "attribute_value": "M"},
            },
        ]
        members = succeeded(
            await answer(
                registry_service, item(query, query_type="predicate", response_entity="Member")
            )
        )
        assert [identifiers(m, "member_identifier")["NIK"] for m in members] == [
            household["spouse"]["nik"]
        ]

    async def test_location_by_region_name(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, village_name = fresh_village(SAMARINDA)
        person = await add_person(registry_service, auth_header, village=village)
        members = succeeded(
            await answer(
                registry_service,
                item(
                    predicate(("location", "eq", village_name.upper()), ("YOB", "ge", 1900)),
                    query_type="predicate",
                    response_entity="Member",
                    pagination={"page_size": 1000, "page_number": 1},
                ),
            )
        )
        assert person["id"] in {identifiers(m, "member_identifier")["PERSON_ID"] for m in members}

    @pytest.mark.parametrize(
        ("query", "needle"),
        [
            (predicate(("shoe_size", "eq", 42)), "unknown attribute"),
            (predicate(("sex", "lt", "F")), "operator"),
            (predicate(("age", "eq", "old")), "needs a number"),
            (predicate(("poverty_score", "lt", 10**30)), "within"),
            (predicate(("YOB", "gt", "NaN")), "within"),
            (predicate(("status", "eq", "sleeping")), "status of a Member"),
            (predicate(("birth_date", "ge", "not a date")), "date"),
            (predicate(("location", "in", [])), "list"),
            ([{"seq_num": 1}], "expression1"),
            (
                [
                    {
                        "expression1": {
                            "attribute_name": "age",
                            "operator": "gt",
                            "attribute_value": 5,
                        },
                        "condition": "xor",
                        "expression2": {
                            "attribute_name": "age",
                            "operator": "lt",
                            "attribute_value": 9,
                        },
                    }
                ],
                "condition",
            ),
        ],
    )
    async def test_bad_conditions_are_filter_rejections(
        self, registry_service: RunningService, query: Any, needle: str
    ) -> None:
        response = await answer(
            registry_service, item(query, query_type="predicate", response_entity="Member")
        )
        assert needle in rejected(response, "rjct.filter.invalid")


def _nested(condition: dict[str, Any], depth: int) -> dict[str, Any]:
    for _ in range(depth):
        condition = {"$not": condition}
    return condition


class TestExpression:
    async def test_the_spec_s_mongo_style_document(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        poor = await family(registry_service, auth_header, village=village, decile=2, children=1)
        await family(registry_service, auth_header, village=village, decile=8, children=1)
        await family(registry_service, auth_header, village=village, decile=3, children=4)
        query = {
            "type": "ns:org:QueryType:expression",
            "value": {
                "expression": {
                    "collection": "Group",
                    "query": {
                        "$and": [
                            {"poverty_score": {"$lt": 5}},
                            {"location": {"$eq": village}},
                            {"group_size": {"$lt": 5}},
                        ]
                    },
                }
            },
        }
        groups = succeeded(await answer(registry_service, item(query, query_type="expression")))
        assert [identifiers(g, "group_identifier")["KK"] for g in groups] == [poor["kk"]]

    async def test_or_not_in_and_member_attributes_on_groups(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        with_baby = await family(registry_service, auth_header, village=village, decile=6)
        without = await family(registry_service, auth_header, village=village, decile=1, children=0)
        rich = await family(registry_service, auth_header, village=village, decile=10, children=0)
        query = {
            "expression": {
                "collection": "Group",
                "query": {
                    "location": village,
                    "$or": [{"age": {"$lte": 6}}, {"poverty_score": {"$in": [1, 2]}}],
                    "$not": {"poverty_score": 10},
                },
            }
        }
        groups = succeeded(await answer(registry_service, item(query, query_type="expression")))
        assert {identifiers(g, "group_identifier")["KK"] for g in groups} == {
            with_baby["kk"],
            without["kk"],
        }
        assert rich["kk"] not in {identifiers(g, "group_identifier")["KK"] for g in groups}

    @pytest.mark.parametrize(
        ("query", "code"),
        [
            ({"expression": {"collection": "Group", "query": {"$xor": []}}}, "rjct.filter.invalid"),
            (
                {"expression": {"collection": "Farm", "query": {"age": 3}}},
                "rjct.search_criteria.invalid",
            ),
            (
                {"type": "graphql", "value": {"expression": "query { member }"}},
                "rjct.search_criteria.invalid",
            ),
            ("poverty_score < 5", "rjct.search_criteria.invalid"),
            (
                {"expression": {"query": {"$and": [{"age": {"$gt": n}} for n in range(101)]}}},
                "rjct.filter.invalid",
            ),
            ({"expression": {"query": _nested({"age": 3}, 12)}}, "rjct.filter.invalid"),
        ],
    )
    async def test_bad_documents_are_rejected(
        self, registry_service: RunningService, query: Any, code: str
    ) -> None:
        rejected(await answer(registry_service, item(query, query_type="expression")), code)


class TestSortAndPagination:
    async def test_pages_are_1_based_sorted_and_count_every_match(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        for decile in (5, 1, 3, 4, 2):
            await family(registry_service, auth_header, village=village, decile=decile, children=0)
        pages = []
        for number in (1, 2, 3):
            response = await answer(
                registry_service,
                item(
                    predicate(("location", "eq", village)),
                    query_type="predicate",
                    response_entity="Group",
                    sort=[{"attribute_name": "poverty_score", "sort_order": "desc"}],
                    pagination={"page_size": 2, "page_number": number},
                ),
            )
            assert response["pagination"] == {
                "page_size": 2,
                "page_number": number,
                "total_count": 5,
            }
            pages.append([group["poverty_score"] for group in succeeded(response)])
        assert pages == [[5, 4], [3, 2], [1]]

    async def test_a_page_past_the_end_is_empty_with_the_total(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        await family(registry_service, auth_header, village=village, children=0)
        response = await answer(
            registry_service,
            item(
                predicate(("location", "eq", village)),
                query_type="predicate",
                response_entity="Member",
                pagination={"page_size": 10, "page_number": 9},
            ),
        )
        assert succeeded(response) == []
        assert response["pagination"]["total_count"] == 2

    async def test_sort_by_member_attributes(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=2)
        members = succeeded(
            await answer(
                registry_service,
                item(
                    predicate(("location", "eq", village)),
                    query_type="predicate",
                    response_entity="Member",
                    sort=[
                        {"attribute_name": "sex", "sort_order": "asc"},
                        {"attribute_name": "YOB", "sort_order": "desc"},
                    ],
                ),
            )
        )
        expected = [
            household["children"][1],  # F, aged 5
            household["spouse"],  # F 1983
            household["children"][0],  # M, aged 6
            household["head"],  # M 1980
        ]
        assert [identifiers(m, "member_identifier")["NIK"] for m in members] == [
            person["nik"] for person in expected
        ]

    @pytest.mark.parametrize(
        "pagination",
        [
            {"page_size": 0},
            {"page_size": MAX_PAGE_SIZE + 1},
            {"page_size": 10, "page_number": 0},
            {"page_size": 2.5},
            {"page_number": 1},
            {"page_size": "ten"},
        ],
    )
    async def test_invalid_pagination(
        self, registry_service: RunningService, pagination: dict[str, Any]
    ) -> None:
        response = await answer(
            registry_service,
            item(predicate(("age", "gt", 1)), query_type="predicate", pagination=pagination),
        )
        rejected(response, "rjct.pagination.invalid")

    @pytest.mark.parametrize(
        "sort",
        [
            [{"attribute_name": "shoe_size", "sort_order": "asc"}],
            [{"attribute_name": "poverty_score", "sort_order": "sideways"}],
            [{"attribute_name": "age", "sort_order": "asc"}],  # a person attribute on Groups
            {"attribute_name": "age"},
        ],
    )
    async def test_invalid_sort(self, registry_service: RunningService, sort: Any) -> None:
        response = await answer(
            registry_service,
            item(
                predicate(("poverty_score", "lt", 3)),
                query_type="predicate",
                response_entity="Group",
                sort=sort,
            ),
        )
        rejected(response, "rjct.sort.invalid")

    async def test_too_many_records_without_pagination(
        self, registry_service: RunningService, registry_settings: RegistrySettings
    ) -> None:
        village, _ = fresh_village(SAMARINDA)
        # 1,001 people written straight into the table (day 99 of the NIK: no factory makes it).
        await fetch(
            registry_settings,
            "INSERT INTO person (id, nik, full_name, birth_date, sex, village_code)"
            " SELECT gen_random_uuid(), $1 || lpad(i::text, 6, '0'), 'Warga Uji', '1990-01-01',"
            " 'M', $2 FROM generate_series(1, $3::int) AS i",
            f"{village[:6]}9901",
            village,
            MAX_UNPAGINATED_RECORDS + 1,
        )
        everyone = predicate(("location", "eq", village))
        message = rejected(
            await answer(
                registry_service,
                item(everyone, query_type="predicate", response_entity="Member"),
            ),
            "rjct.search.too_many_records_found",
        )
        assert "pagination" in message
        last_page = await answer(
            registry_service,
            item(
                everyone,
                query_type="predicate",
                response_entity="Member",
                pagination={"page_size": MAX_PAGE_SIZE, "page_number": 2},
            ),
        )
        assert len(succeeded(last_page)) == 1
        assert last_page["pagination"]["total_count"] == MAX_UNPAGINATED_RECORDS + 1


class TestItemChecks:
    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"reference_id": ""}, "rjct.reference_id.invalid"),
            ({"reference_id": None}, "rjct.reference_id.invalid"),
            ({"timestamp": "yesterday"}, "rjct.timestamp.invalid"),
            ({"search_criteria": None}, "rjct.search_criteria.invalid"),
        ],
    )
    async def test_item_fields(
        self, registry_service: RunningService, change: dict[str, Any], code: str
    ) -> None:
        search_item = {**item(predicate(("age", "gt", 1)), query_type="predicate"), **change}
        rejected(await answer(registry_service, search_item), code)

    async def test_another_registry_type_or_query_type(
        self, registry_service: RunningService
    ) -> None:
        crvs = item(predicate(("age", "gt", 1)), query_type="predicate")
        crvs["search_criteria"]["reg_type"] = "ns:org:RegistryType:CRVS"
        rejected(await answer(registry_service, crvs), "rjct.search_criteria.invalid")
        sql = item("SELECT 1", query_type="sql")
        rejected(await answer(registry_service, sql), "rjct.search_criteria.invalid")


class TestProjectionByScope:
    async def test_basic_read_reveals_no_identity_and_no_decile(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, decile=2)
        [group] = succeeded(
            await answer(
                registry_service,
                item({"type": "KK", "value": household["kk"]}, query_type="idtype-value"),
                caller(scopes=frozenset({READ})),
            )
        )
        assert identifiers(group, "group_identifier") == {"HOUSEHOLD_ID": household["id"]}
        assert "poverty_score" not in group
        assert "poverty_score_type" not in group
        assert "Jl. Mulawarman" not in group["place"]["address"]
        head = group["group_head_info"]
        assert identifiers(head, "member_identifier") == {"PERSON_ID": household["head"]["id"]}
        assert set(head["demographic_info"]) == {"@type", "sex", "address"}
        assert "education_level" not in head
        attributes = {a["attribute_name"] for a in group["additional_attributes"]}
        assert attributes == {"status", "location", "version"}

    async def test_identity_without_socioeconomic(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, decile=2)
        [member] = succeeded(
            await answer(
                registry_service,
                item({"type": "NIK", "value": household["head"]["nik"]}, query_type="idtype-value"),
                caller(scopes=frozenset({READ, IDENTITY})),
            )
        )
        assert identifiers(member, "member_identifier")["NIK"] == household["head"]["nik"]
        assert member["demographic_info"]["name"]["given_name"] == "Budi Santoso"
        assert "poverty_score" not in member

    async def test_filters_and_sorts_need_the_scope_that_reveals_them(
        self, registry_service: RunningService
    ) -> None:
        basic = caller(scopes=frozenset({READ}))
        message = rejected(
            await answer(
                registry_service,
                item(predicate(("poverty_score", "lt", 3)), query_type="predicate"),
                basic,
            ),
            "rjct.filter.invalid",
        )
        assert SOCIOECONOMIC in message
        rejected(
            await answer(
                registry_service,
                item(predicate(("DOB", "eq", "1980-03-15")), query_type="predicate"),
                basic,
            ),
            "rjct.filter.invalid",
        )
        rejected(
            await answer(
                registry_service,
                item(
                    predicate(("age", "gt", 3)),
                    query_type="predicate",
                    response_entity="Group",
                    sort=[{"attribute_name": "poverty_score", "sort_order": "asc"}],
                ),
                basic,
            ),
            "rjct.sort.invalid",
        )


class TestRegionRestriction:
    async def test_records_outside_the_caller_s_regions_read_like_unknown_ones(
        self, registry_service: RunningService, auth_header: Headers
    ) -> None:
        village, _ = fresh_village(SAMARINDA)
        household = await family(registry_service, auth_header, village=village)
        balikpapan_staff = caller(regions=(BALIKPAPAN,))
        for query in (
            {"type": "KK", "value": household["kk"]},
            {"type": "NIK", "value": household["head"]["nik"]},
        ):
            response = await answer(
                registry_service, item(query, query_type="idtype-value"), balikpapan_staff
            )
            assert succeeded(response) == []
            assert response["pagination"]["total_count"] == 0
        by_location = await answer(
            registry_service,
            item(predicate(("location", "eq", village)), query_type="predicate"),
            balikpapan_staff,
        )
        assert succeeded(by_location) == []
        assert by_location["pagination"]["total_count"] == 0
        samarinda_staff = caller(regions=(SAMARINDA,))
        [group] = succeeded(
            await answer(
                registry_service,
                item({"type": "KK", "value": household["kk"]}, query_type="idtype-value"),
                samarinda_staff,
            )
        )
        assert group["group_size"] == 3


class TestAudit:
    async def test_every_returned_record_is_audited_with_the_item_s_purpose(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village()
        household = await family(registry_service, auth_header, village=village, children=1)
        consent = {
            "@type": "Consent",
            "ts": "2026-11-25T09:00:00Z",
            "purpose": {"text": "PBI-JK premium verification", "code": "PBI-JK"},
        }
        response = await answer(
            registry_service,
            item(
                {"type": "KK", "value": household["kk"]},
                query_type="idtype-value",
                consent=consent,
            ),
            caller(agency="BPJS"),
        )
        assert succeeded(response)
        people = [
            household["head"]["id"],
            household["spouse"]["id"],
            household["children"][0]["id"],
        ]
        rows = await fetch(
            registry_settings,
            "SELECT agency, subject, purpose, action, resource_type, resource_id FROM audit_log"
            " WHERE resource_id = ANY($1::text[]) AND subject = 'dci-tester'",
            [household["id"], *people],
        )
        assert sorted((r["resource_type"], r["resource_id"]) for r in rows) == sorted(
            [("household", household["id"])] + [("person", p) for p in people]
        )
        assert {(r["agency"], r["purpose"], r["action"]) for r in rows} == {
            ("BPJS", "SPDCI consent: PBI-JK - PBI-JK premium verification", "read")
        }

    async def test_without_a_stated_purpose_the_default_is_recorded_and_misses_are_not(
        self,
        registry_service: RunningService,
        registry_settings: RegistrySettings,
        auth_header: Headers,
    ) -> None:
        village, _ = fresh_village(SAMARINDA)
        person = await add_person(registry_service, auth_header, village=village)
        search = item({"type": "NIK", "value": person["nik"]}, query_type="idtype-value")
        await answer(registry_service, search, caller(regions=(BALIKPAPAN,), agency="DINSOS"))
        await answer(registry_service, search, caller(agency="KEMENSOS"))
        rows = await fetch(
            registry_settings,
            "SELECT agency, purpose FROM audit_log WHERE resource_id = $1",
            person["id"],
        )
        assert [(r["agency"], r["purpose"]) for r in rows] == [("KEMENSOS", PURPOSE)]


class TestSubscriptionCriteria:
    def criteria(self, **change: Any) -> dict[str, Any]:
        return {
            "version": "1.0.0",
            "reg_type": "ns:org:RegistryType:Social",
            "reg_event_type": "DEATH",
            "filter_type": "predicate",
            "filter": predicate(("location", "eq", "6471"), ("age", "ge", 60)),
            "notify_record_type": "Member",
            **change,
        }

    @pytest.mark.parametrize(
        "change",
        [
            {},
            {"reg_event_type": "spdci-common:RegistryEventType:Death"},
            {"reg_event_type": "register", "notify_record_type": "spdci-extensions-dci:Member"},
            {"reg_event_type": "NewHouseHoldMember", "notify_record_type": "Group"},
            {"filter_type": "idtype-value", "filter": {"type": "UIN", "value": "6471011503800001"}},
            {
                "filter_type": "expression",
                "filter": {
                    "expression": {"collection": "Group", "query": {"poverty_score": {"$lte": 2}}}
                },
            },
            {"filter": {}},
            {
                "frequency": {
                    "start_time": "2026-11-01T00:00:00Z",
                    "end_time": "2027-11-01T00:00:00Z",
                    "frequency": "0 0 0 5,15 * ? *",
                }
            },
        ],
    )
    def test_accepted(self, change: dict[str, Any]) -> None:
        check_subscription(self.criteria(**change))

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"reg_event_type": "LiveBirth"}, "rjct.notify_types.invalid"),
            ({"reg_event_type": None}, "rjct.notify_types.invalid"),
            ({"notify_record_type": "Farm"}, "rjct.notify_types.invalid"),
            ({"notify_record_type": None}, "rjct.notify_types.invalid"),
            ({"filter": predicate(("shoe_size", "eq", 1))}, "rjct.notify_details.invalid"),
            ({"filter": "age > 5"}, "rjct.notify_details.invalid"),
            ({"filter_type": "graphql"}, "rjct.notify_details.invalid"),
            (
                {"filter": {"expression": {"collection": "Farm", "query": {"age": 3}}}},
                "rjct.notify_details.invalid",
            ),
            (
                {
                    "frequency": {
                        "start_time": "2027-01-01T00:00:00Z",
                        "end_time": "2026-01-01T00:00:00Z",
                    }
                },
                "rjct.notify_details.invalid",
            ),
        ],
    )
    def test_rejected(self, change: dict[str, Any], code: str) -> None:
        with pytest.raises(ItemRejected) as rejection:
            check_subscription(self.criteria(**change))
        assert rejection.value.reason_code == code

    def test_a_filter_beyond_the_subscriber_s_scopes(self) -> None:
        criteria = self.criteria(filter=predicate(("poverty_score", "le", 2)))
        check_subscription(criteria, caller=caller(scopes=ALL_READ))
        with pytest.raises(ItemRejected) as rejection:
            check_subscription(criteria, caller=caller(scopes=frozenset({READ})))
        assert rejection.value.reason_code == "rjct.notify_details.invalid"
        assert SOCIOECONOMIC in rejection.value.message

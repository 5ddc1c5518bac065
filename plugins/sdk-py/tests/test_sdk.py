"""The Python SDK on its fake host: its rules shared with the Rust SDK (times, keys,
properties), its builders' checks, retries, paging, streamed lines and what a failed step
keeps.

    python3 -m unittest discover tests    (in plugins/sdk-py)
"""

import unittest

from corral_sdk import (
    Capabilities,
    DataModelError,
    Definition,
    JobState,
    ProviderError,
    Step,
    create_direct_relationship,
    create_integration_entity,
    define_connector,
    http,
    props,
    testing,
)
from corral_sdk.time import parse_epoch_ms


def entity(**extra):
    fields = {"key": "acme-widget-1", "type": "acme_widget", "cls": "Configuration"}
    fields.update(extra)
    return create_integration_entity(**fields)


class SdkTest(unittest.TestCase):
    def setUp(self):
        testing.reset()

    def test_times_as_the_rust_sdk_reads_them(self):
        self.assertEqual(parse_epoch_ms("2024-01-02 03:04:05.678912+01:00"), 1704161045678)
        self.assertEqual(parse_epoch_ms("2024-01-02"), 1704153600000)
        self.assertEqual(parse_epoch_ms("1969-12-31T23:59:59Z"), -1000)
        for bad in ["", "2024-13-01", "2024-01-02T25:00", "２０２４-01-02", "yesterday", None, 7]:
            self.assertIsNone(parse_epoch_ms(bad), bad)

    def test_properties_take_only_what_the_host_accepts(self):
        self.assertEqual(props.allowed([1, 2.5]), [1, 2.5])
        self.assertIsNone(props.allowed(["a", 1]))
        self.assertIsNone(props.allowed({"a": 1}))
        self.assertEqual(props.pluck([{"u": 1}, {"u": None}, {}, "x", {"u": 2}], "u"), [1, 2])
        self.assertIsNone(props.pluck([{"u": 1}, {"u": "a"}], "u"))
        self.assertEqual(props.first_readable({"a": "  ", "b": "B"}, ["a", "b"]), "B")
        self.assertEqual(props.at({"a": {"b": 3}}, "a", "b"), 3)
        self.assertIsNone(props.at({"a": [1]}, "a", "b"))

    def test_builders_refuse_what_the_host_would(self):
        with self.assertRaisesRegex(DataModelError, "shorter than 10"):
            entity(key="short")
        with self.assertRaisesRegex(DataModelError, "not a known data-model class"):
            entity(cls="Gadget")
        with self.assertRaisesRegex(DataModelError, "_type"):
            entity(type="Acme-Widget")
        e = entity(properties={"name": "x" * 5000, "nested": {"a": 1}, "seenOn": "2024", "ok": [1, 2], "_key": "evil"})
        self.assertEqual(sorted(e), ["_class", "_key", "_type", "displayName", "name", "ok"])
        self.assertEqual((e["_key"], e["name"], e["displayName"]), ("acme-widget-1",) * 3)
        self.assertEqual(len([l for l in testing.logs() if l[0] == "warn"]), 3)
        edge = create_direct_relationship(cls="HAS", from_entity={"_key": "acme-account-1", "_type": "acme_account"}, to_entity=e)
        self.assertEqual((edge["_key"], edge["_type"]), ("acme-account-1|has|acme-widget-1", "acme_account_has_widget"))

    def test_a_429_is_retried_and_offset_paging_advances_by_rows(self):
        base = "https://api.example.com/things?offset="
        testing.answer("GET", base + "0", 429, "", headers=[("retry-after", "0")])
        testing.answer("GET", base + "0", 200, "[1,2]")
        testing.answer("GET", base + "2", 200, "[3]")
        testing.answer("GET", base + "3", 200, "[]")
        fast = http.Retry(base_delay=0.0)
        pages = list(http.offset_pages(lambda o: http.get_json(base + str(o), fast, bearer="token")))
        self.assertEqual(pages, [[1, 2], [3]])
        self.assertEqual(len(testing.requests()), 4)
        self.assertEqual(testing.unused(), [])
        testing.answer("GET", base + "9", 200, "[NaN]")
        with self.assertRaises(ProviderError):
            http.get_json(base + "9")

    def test_streamed_lines(self):
        url = "https://api.example.com/export"
        testing.answer("GET", url, 200, "a\r\n\nbb" + "c" * 70_000 + "\nlast")
        lines = list(http.lines(http.request(url)))
        self.assertEqual([l[:3] for l in lines], ["a", "bbc", "las"])

    def test_a_failing_step_keeps_what_it_emitted(self):
        def widgets(job: JobState):
            job.add_entity(entity(properties={"name": "w"}))
            raise ProviderError("page 2 failed")

        Connector = define_connector(
            Definition(
                id="acme", name="Acme", version="0.1.0", description="d", config=[],
                capabilities=Capabilities(), steps=[Step("widgets", "Widgets", widgets)],
            )
        )
        with self.assertRaises(testing.StepFailed) as failed:
            Connector().run_step("widgets")
        self.assertEqual((failed.exception.kind, failed.exception.message), ("provider", "page 2 failed"))
        self.assertEqual([e["_key"] for e in testing.entities()], ["acme-widget-1"])
        with self.assertRaises(testing.StepFailed) as unknown:
            Connector().run_step("nope")
        self.assertEqual(unknown.exception.kind, "config")


if __name__ == "__main__":
    unittest.main()

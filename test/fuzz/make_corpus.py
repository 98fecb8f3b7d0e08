#!/usr/bin/env python3
"""Writes the transform fuzzer's seed corpus (test/fuzz/corpus/) and dictionary (json.dict).

Run once after changing it: python3 test/fuzz/make_corpus.py. The corpus is small realistic
events plus one or more seeds for every dead-letter reason and for the JSON corner cases SPEC
names; see test/fuzz/transform_fuzz.cpp for the 0xFF control header (mode, clock, key).
"""
import json
import pathlib
import shutil

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

EXAMPLE = {"user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae", "app_version": "2.3.0",
           "device_type": "android", "ip": "199.172.111.135", "locale": "RU",
           "device_id": "593-47-5928", "timestamp": 1694479551}


def ev(**changes):
    """The SPEC example with members changed (value None: the member is removed)."""
    d = dict(EXAMPLE)
    for k, v in changes.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()


def raw(s):
    return s.encode() if isinstance(s, str) else s


def header(mode=0, clock=0, key=b""):
    """The fuzzer's control header: 0xFF, mode, clock, key length (16: null key), key."""
    if key is None:
        return bytes([0xFF, mode, clock, 16])
    return bytes([0xFF, mode, clock, len(key)]) + key


BASE = ev().decode()[:-1]  # the example without its closing brace, to append members to

SEEDS = {
    # ---- outputs ----
    "valid-spec-example": raw(json.dumps(EXAMPLE)),  # with SPEC's spaces
    "valid-compact": ev(),
    "valid-ts-digit-string": ev(timestamp="1694479551"),
    "valid-ts-millis": ev(timestamp=1694479551123),
    "valid-ts-millis-string": ev(timestamp="1694479551000"),
    "valid-ts-leading-zeros": ev(timestamp="0001694479551"),
    "valid-ts-lower-bound": ev(timestamp=946684800),
    "valid-ts-millis-threshold": ev(timestamp=1000000000000),  # 10^12: milliseconds
    "valid-ts-upper-bound-ms": ev(timestamp="1764151200123"),  # now + 24 h exactly
    "dlq-ts-upper-bound-plus-1": ev(timestamp=1764151200124),
    "valid-no-device-type": ev(device_type=None),
    "valid-only-required": raw('{"user_id":"u","timestamp":1694479551}'),
    "valid-ios-casing": ev(device_type="iOS"),
    "valid-device-type-spaces": ev(device_type=" \tIOS \r\n"),
    "valid-device-type-blank": ev(device_type="   "),
    "valid-trim-every-space": raw('{"user_id":"u","timestamp":1694479551,'
                                  '"device_type":"\\u000b\\f\\r\\n\\t iOS \\u000b",'
                                  '"locale":"\\u000bca\\f"}'),
    "valid-nbsp-not-trimmed": raw('{"user_id":"u","timestamp":1694479551,'
                                  '"device_type":"\\u00a0IOS","locale":"\\u00a0RU"}'),
    "valid-us-state-locale": ev(locale="CA"),
    "valid-locale-lower-3": ev(locale=" usa "),
    "valid-ipv6": ev(ip="2001:db8::8a2e:370:7334"),
    "valid-ipv6-mapped": ev(ip="::ffff:192.0.2.1"),
    "valid-app-version-single": ev(app_version="2"),
    "valid-nulls": raw('{"user_id":"u","timestamp":1694479551,"device_id":null,'
                       '"device_type":null,"app_version":null,"locale":null,"ip":null}'),
    "valid-wrong-types": raw('{"user_id":"u1","timestamp":1694479551,"device_id":123,'
                             '"device_type":true,"app_version":2.3,"locale":["RU"],"ip":{"v":4}}'),
    "valid-bad-values": ev(locale="RU1", ip="01.2.3.4", app_version="2.3.0-beta"),
    "valid-ip-zone-id": ev(ip="fe80::1%eth0", app_version="v2", locale="R"),
    "valid-unknown-fields": raw(BASE + ',"extra":{"a":[1,2,{"b":null}]},"n":-1.5e-3}'),
    "valid-pretty": raw(json.dumps(EXAMPLE, indent=2)),
    "valid-escapes": raw('{"user\\u005fid":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/",'
                         '"timestamp":"1694479551","device_id":"tab\\there\\u001f"}'),
    "valid-unicode": ev(user_id="ユーザー-ü-😀", device_id="устройство"),
    "valid-user-id-128": ev(user_id="u" * 128),
    "valid-user-id-nul-escape": raw('{"user_id":"a\\u0000b","timestamp":1694479551}'),
    "valid-duplicates": raw('{"user_id":1,"timestamp":"x","user_id":"second",'
                            '"timestamp":1694479551,"locale":"ZZZZ","locale":"de"}'),
    "valid-number-0e400": raw(BASE + ',"x":0e400,"y":1e-400}'),
    "valid-deep-unknown": raw(BASE + ',"deep":' + "[" * 300 + "]" * 300 + "}"),
    "valid-deep-objects": raw(BASE + ',"deep":' + '{"a":' * 200 + "1" + "}" * 200 + "}"),
    # ---- dead letters: invalid_json ----
    "dlq-truncated": ev()[:-7],
    "dlq-trailing-garbage": ev() + b" x",
    "dlq-two-documents": ev() + ev(),
    "dlq-bom": b"\xef\xbb\xbf" + ev(),
    "dlq-lone-high-surrogate": raw('{"user_id":"\\ud800","timestamp":1694479551}'),
    "dlq-lone-low-surrogate": raw('{"user_id":"u","device_id":"\\udc00x","timestamp":1694479551}'),
    "dlq-number-1e400": raw(BASE + ',"x":1e400}'),
    "dlq-number-neg-99e307": raw(BASE + ',"x":-99e307}'),
    "dlq-invalid-utf8": ev()[:-1] + b',"x":"\xc3\x28"}',
    "dlq-overlong-utf8": ev()[:-1] + b',"x":"\xc0\xaf"}',
    "dlq-raw-surrogate-bytes": ev()[:-1] + b',"x":"\xed\xa0\x80"}',
    "dlq-nul-after": ev() + b"\x00junk",
    "dlq-nul-in-string": raw('{"user_id":"a') + b"\x00" + raw('b","timestamp":1694479551}'),
    "dlq-single-quotes": raw("{'user_id':'u','timestamp':1694479551}"),
    "dlq-empty": b"",
    # ---- not_an_object ----
    "dlq-array": raw("[" + ev().decode() + "]"),
    "dlq-string": raw('"user_id"'),
    "dlq-number": raw("1694479551"),
    "dlq-json-null": raw("null"),
    "dlq-deep-array": raw("[" * 400 + "]" * 400),
    # ---- user_id ----
    "dlq-missing-user-id": ev(user_id=None),
    "dlq-null-user-id": raw('{"user_id":null,"timestamp":1694479551}'),
    "dlq-user-id-number": ev(user_id=42),
    "dlq-user-id-empty": ev(user_id=""),
    "dlq-user-id-129": ev(user_id="u" * 129),
    # ---- timestamp ----
    "dlq-missing-timestamp": ev(timestamp=None),
    "dlq-null-timestamp": raw('{"user_id":"u","timestamp":null}'),
    "dlq-ts-fraction": ev(timestamp=1694479551.5),
    "dlq-ts-exponent": raw('{"user_id":"u","timestamp":1.694479551e9}'),
    "dlq-ts-signed-string": ev(timestamp="+1694479551"),
    "dlq-ts-spaced-string": ev(timestamp=" 1694479551"),
    "dlq-ts-negative": ev(timestamp=-1),
    "dlq-ts-before-2000": ev(timestamp=946684799),
    "dlq-ts-far-future": ev(timestamp=999999999999),
    "dlq-ts-huge": ev(timestamp="99999999999999999999999"),
    "dlq-ts-bool": ev(timestamp=True),
    # ---- with the control header: tombstone, size limit, clocks, keys ----
    "hdr-tombstone": header(mode=1, key=b"k1") + ev(),
    "hdr-too-large": header(mode=2) + ev(),
    "hdr-exactly-1000000": header(mode=3) + ev(),
    "hdr-clock-2000": header(clock=3, key=b"user-1") + ev(timestamp=946684800),
    "hdr-clock-millis-edge": header(clock=6) + ev(timestamp="999999999999"),
    "hdr-clock-year-9999": header(clock=10) + ev(timestamp="253402300799"),
    "hdr-clock-int64-max": header(clock=14) + ev(timestamp="9223372036854775807"),
    "hdr-null-key": header(clock=1, key=None) + ev(),
}

DICT = [
    "{", "}", "[", "]", ":", ",", '"', '":"', '","', "null", "true", "false", "-", ".", "e",
    "E+", "e-", "0", "-0", "1e400", "0e400", "1e-400", "99e307", "1.7976931348623157e308",
    "\\u", "\\u0000", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u005f", '\\"', "\\\\", "\\n",
    "\\t", "\\/", "\\f", "\\r", "\\b", "\\u000b", "\\u000B", "\\u000c", "\\u0020",
    "\\u00a0", "\xef\xbb\xbf", "\x00", " ", "\t", "\r\n", "\xed\xa0\x80", "\xc0\xaf",
    "\xf4\x90\x80\x80",
    '"user_id"', '"device_id"', '"device_type"', '"app_version"', '"locale"', '"ip"',
    '"timestamp"', "user_id", "timestamp",
    '"android"', '"iOS"', '"web"', '"RU"', '"CA"', '"usa"', '"2.3.0"', '"199.172.111.135"',
    '"::1"', '"2001:db8::1"', '"::ffff:1.2.3.4"', '"fe80::1%eth0"', '"01.2.3.4"',
    "1694479551", "1694479551000", "946684800", "946684799", "999999999999", "1000000000000",
    "9223372036854775807", "18446744073709551616",
]


def dict_escape(s):
    out = []
    for ch in s.encode("latin-1") if all(ord(c) < 256 for c in s) else s.encode():
        if ch == 0x22:
            out.append('\\"')
        elif ch == 0x5C:
            out.append("\\\\")
        elif 0x20 <= ch < 0x7F:
            out.append(chr(ch))
        else:
            out.append("\\x%02X" % ch)
    return "".join(out)


def main():
    if CORPUS.exists():
        shutil.rmtree(CORPUS)
    CORPUS.mkdir()
    for name, data in SEEDS.items():
        (CORPUS / name).write_bytes(data)
    lines = ["# libFuzzer dictionary for transform_fuzz: JSON tokens, SPEC field names and values.",
             "# Generated by make_corpus.py."]
    lines += ['kw%d="%s"' % (i, dict_escape(t)) for i, t in enumerate(DICT)]
    (HERE / "json.dict").write_text("\n".join(lines) + "\n")
    print("wrote %d seeds to %s and %d dictionary entries" % (len(SEEDS), CORPUS, len(DICT)))


if __name__ == "__main__":
    main()

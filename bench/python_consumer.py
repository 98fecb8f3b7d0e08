#!/usr/bin/python3
"""The Python consumer that loginflow replaces, as a baseline for bench/run_bench.py.

It does what the original did, one message at a time, with kafka-python's default settings
(auto-commit every 5 s, a producer with acks=1 and no compression):
subscribe to user-login, JSON-decode each message, read the seven fields, convert the timestamp
to "%Y-%m-%d %H:%M:%S", count device types and locales in dicts, send
{user_id, device_type, readable_time, ip} as JSON to processed-user-login, and print the most
popular device type and locale every 100 messages.

Two additions so that it can be measured: a message it cannot process (not JSON, not an
object, a timestamp that is not a number) is counted and skipped instead of stopping the
consumer, and a millisecond timestamp is divided by 1000 (the original assumed seconds). The
progress line carries the counts, and SIGTERM stops it cleanly (flush, commit, leave the group)
and prints one JSON summary line.

kafka-python reads only uncompressed or gzip batches from the embedded broker: produce its
input with `loginflow gen ... -X compression.type=gzip`.

    /usr/bin/python3 bench/python_consumer.py --brokers HOST:PORT [--group-id G]
"""
import argparse
import json
import signal
import sys
from datetime import datetime, timezone

from kafka import KafkaConsumer, KafkaProducer

stop = False


def on_signal(signum, frame):
    global stop
    stop = True


def most_popular(counts):
    if not counts:
        return None, 0
    name = max(counts, key=counts.get)
    return name, counts[name]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--group-id", default="python-consumer")
    ap.add_argument("--input-topic", default="user-login")
    ap.add_argument("--output-topic", default="processed-user-login")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    consumer = KafkaConsumer(
        args.input_topic,
        bootstrap_servers=args.brokers,
        group_id=args.group_id,
        auto_offset_reset="earliest",
        consumer_timeout_ms=200,  # the iterator ends when idle, so that a stop is seen
    )
    producer = KafkaProducer(
        bootstrap_servers=args.brokers,
        value_serializer=lambda v: json.dumps(v).encode("utf-8"),
    )

    device_type_counts = {}
    locale_counts = {}
    consumed = 0
    sent = 0
    errors = 0
    reported = 0

    def report():
        nonlocal reported
        dt, dt_n = most_popular(device_type_counts)
        lc, lc_n = most_popular(locale_counts)
        print(f"processed={consumed} sent={sent} errors={errors} "
              f"most popular device type: {dt} ({dt_n}), most popular locale: {lc} ({lc_n})", flush=True)
        reported = consumed

    while not stop:
        for message in consumer:
            consumed += 1
            try:
                data = json.loads(message.value.decode("utf-8"))
                user_id = data.get("user_id")
                app_version = data.get("app_version")  # noqa: F841 (read, as the original did)
                device_type = data.get("device_type")
                ip = data.get("ip")
                locale = data.get("locale")
                device_id = data.get("device_id")  # noqa: F841
                timestamp = int(data.get("timestamp"))
                if timestamp >= 10**12:
                    timestamp //= 1000
                readable_time = datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            except (AttributeError, TypeError, ValueError, OverflowError, OSError):
                errors += 1
            else:
                device_type_counts[device_type] = device_type_counts.get(device_type, 0) + 1
                locale_counts[locale] = locale_counts.get(locale, 0) + 1
                producer.send(args.output_topic, {"user_id": user_id, "device_type": device_type,
                                                  "readable_time": readable_time, "ip": ip})
                sent += 1
            if consumed % 100 == 0:
                report()
            if stop:
                break
        if consumed != reported:  # idle (or stopping) with a partial hundred: report it too
            report()

    producer.flush()
    producer.close()
    consumer.close()  # commits the consumed positions (auto-commit) and leaves the group
    print(json.dumps({"consumed": consumed, "sent": sent, "errors": errors}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

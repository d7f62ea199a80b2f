"""The pipeline a city data team would write instead of platestream: the benchmark's peer.

Consumes the raw plate-read topic with confluent-kafka, decodes each vendor's JSON (the five
formats the simulated city's readers speak), normalizes the plate text, looks it up in the hotlist
(an exact dict lookup, no misread or partial matching), produces an alert for each hit, writes every
read to Parquet (zstd) with pyarrow and commits offsets after each Parquet row group is written.

    python city_pipeline.py --brokers 127.0.0.1:9092 --topic bench-reads --group peer-1 \
        --hotlist hotlist.csv --out peer-archive --expect 2000000 [--alerts-topic peer-alerts]

Prints one JSON line of counts and timings on stdout when `--expect` messages are consumed.
Written the way a competent team would: batch consume, one dict per hotlist, columnar buffers.
"""

import argparse
import csv
import datetime as dt
import json
import os
import sys
import time

import confluent_kafka
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer, Producer

SCHEMA = pa.schema(
    [
        ("read_id", pa.string()),
        ("vendor", pa.string()),
        ("reader_id", pa.string()),
        ("camera_id", pa.string()),
        ("observed_at", pa.timestamp("ms", tz="UTC")),
        ("plate", pa.string()),
        ("plate_norm", pa.string()),
        ("jurisdiction", pa.string()),
        ("confidence", pa.float32()),
        ("lat", pa.float64()),
        ("lon", pa.float64()),
        ("make", pa.string()),
        ("model", pa.string()),
        ("color", pa.string()),
        ("plate_crop_uri", pa.string()),
        ("overview_uri", pa.string()),
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
    ]
)
ROW_GROUP = 131_072


def norm_plate(text):
    return "".join(c for c in text.upper() if c.isalnum())


def norm_region(region):
    """`us-dc`, `MD`, `US-VA` -> `US-DC`, `US-MD`, `US-VA`."""
    if not region:
        return None
    region = region.upper()
    if "-" in region:
        return region
    return "US-" + region if len(region) == 2 else region


def to_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def iso_millis(text):
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def first_name(items):
    return items[0].get("name") if items else None


def decode(message):
    """Returns a list of row dicts (a message may carry several plates)."""
    doc = json.loads(message)
    if "data_type" in doc:  # Rekor Scout alpr_group
        vehicle = doc.get("vehicle") or {}
        best = doc.get("best_plate") or {}
        make_model = first_name(vehicle.get("make_model") or [])
        return [
            {
                "vendor": "rekor",
                "reader_id": doc.get("agent_uid"),
                "camera_id": doc.get("camera_id"),
                "observed_at": int(doc["epoch_start"]),
                "plate": doc["best_plate_number"],
                "jurisdiction": norm_region(doc.get("best_region")),
                "confidence": to_float(doc.get("best_confidence")) / 100.0,
                "lat": to_float(doc.get("gps_latitude")),
                "lon": to_float(doc.get("gps_longitude")),
                "make": first_name(vehicle.get("make") or []),
                "model": make_model.split("_", 1)[-1] if make_model else None,
                "color": first_name(vehicle.get("color") or []),
                "plate_crop_uri": best.get("plate_crop_jpeg"),
                "overview_uri": doc.get("vehicle_crop_jpeg"),
            }
        ]
    if "data" in doc and "hook" in doc:  # Plate Recognizer webhook
        data = doc["data"]
        observed = iso_millis(data["timestamp"])
        rows = []
        for result in data.get("results") or []:
            makes = result.get("model_make") or [{}]
            colors = result.get("color") or [{}]
            rows.append(
                {
                    "vendor": "plate_recognizer",
                    "reader_id": data.get("camera_id"),
                    "camera_id": data.get("camera_id"),
                    "observed_at": observed,
                    "plate": result["plate"],
                    "jurisdiction": norm_region((result.get("region") or {}).get("code")),
                    "confidence": to_float(result.get("score")),
                    "lat": None,
                    "lon": None,
                    "make": makes[0].get("make"),
                    "model": makes[0].get("model"),
                    "color": colors[0].get("color"),
                    "plate_crop_uri": None,
                    "overview_uri": doc.get("platestream_image"),
                }
            )
        return rows
    if "EventType" in doc:  # Genetec AutoVu
        attributes = doc.get("Attributes") or {}
        when = dt.datetime.strptime(
            doc["DateUtc"] + " " + doc["TimeUtc"], "%m/%d/%Y %H:%M:%S.%f"
        ).replace(tzinfo=dt.timezone.utc)
        return [
            {
                "vendor": "genetec",
                "reader_id": doc.get("UnitName"),
                "camera_id": doc.get("CameraName"),
                "observed_at": int(when.timestamp() * 1000),
                "plate": doc["Plate"],
                "jurisdiction": norm_region(doc.get("State")),
                "confidence": to_float(doc.get("ConfidenceScore")) / 100.0,
                "lat": to_float(doc.get("Latitude")),
                "lon": to_float(doc.get("Longitude")),
                "make": attributes.get("Vehicle Make"),
                "model": attributes.get("Vehicle Model"),
                "color": attributes.get("Vehicle Color"),
                "plate_crop_uri": doc.get("PlateImage"),
                "overview_uri": doc.get("ContextImage"),
            }
        ]
    if "plateText" in doc or "plateUTF8" in doc:  # Axis License Plate Verifier
        vehicle = doc.get("vehicle_info") or {}
        images = doc.get("imagesURI") or []
        geotag = doc.get("geotag") or {}
        return [
            {
                "vendor": "axis",
                "reader_id": (doc.get("camera_info") or {}).get("SerialNumber"),
                "camera_id": doc.get("sensorProviderID"),
                "observed_at": int(doc["capture_timestamp"]),
                "plate": doc.get("plateUTF8") or doc["plateText"],
                "jurisdiction": norm_region(doc.get("plateRegion")),
                "confidence": to_float(doc.get("plateConfidence")),
                "lat": to_float(geotag.get("lat")),
                "lon": to_float(geotag.get("lon")),
                "make": vehicle.get("manufacturer"),
                "model": vehicle.get("model"),
                "color": vehicle.get("color"),
                "plate_crop_uri": images[0] if images else None,
                "overview_uri": images[1] if len(images) > 1 else None,
            }
        ]
    # The canonical read.
    vehicle = doc.get("vehicle") or {}
    images = doc.get("images") or {}
    observed = doc["observed_at"]
    return [
        {
            "vendor": doc.get("vendor"),
            "reader_id": doc["reader_id"],
            "camera_id": doc.get("camera_id"),
            "observed_at": observed if isinstance(observed, int) else iso_millis(observed),
            "plate": doc["plate"],
            "jurisdiction": norm_region(doc.get("jurisdiction")),
            "confidence": to_float(doc.get("confidence")),
            "lat": to_float(doc.get("lat")),
            "lon": to_float(doc.get("lon")),
            "make": (vehicle.get("make") or {}).get("value"),
            "model": (vehicle.get("model") or {}).get("value"),
            "color": (vehicle.get("color") or {}).get("value"),
            "plate_crop_uri": images.get("plate_crop"),
            "overview_uri": images.get("overview"),
        }
    ]


def load_hotlist(path):
    hotlist = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            hotlist.setdefault(norm_plate(row["plate"]), []).append(row)
    return hotlist


class ParquetSink:
    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.files = 0
        self.rows = 0
        self.columns = {name: [] for name in SCHEMA.names}

    def append(self, row):
        columns = self.columns
        for name in SCHEMA.names:
            columns[name].append(row.get(name))

    def pending(self):
        return len(self.columns["read_id"])

    def flush(self):
        """Writes pending rows as one zstd Parquet file; returns whether anything was written."""
        count = self.pending()
        if count == 0:
            return False
        table = pa.Table.from_pydict(self.columns, schema=SCHEMA)
        path = os.path.join(self.directory, f"reads-{self.files:05}.parquet")
        pq.write_table(table, path, compression="zstd", compression_level=3)
        self.files += 1
        self.rows += count
        self.columns = {name: [] for name in SCHEMA.names}
        return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--hotlist", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--expect", type=int, required=True, help="stop after this many messages")
    parser.add_argument("--alerts-topic")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after this long")
    args = parser.parse_args()

    hotlist = load_hotlist(args.hotlist)
    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 52428800,
            "max.partition.fetch.bytes": 16777216,
            # The engine's fetch settings too (see KafkaSettings::consumer_config), so the two
            # pipelines differ in what they do with a message, not in how the broker feeds them.
            "fetch.wait.max.ms": 1,
            "fetch.queue.backoff.ms": 10,
        }
    )
    producer = (
        Producer({"bootstrap.servers": args.brokers, "linger.ms": 1, "acks": "all"})
        if args.alerts_topic
        else None
    )
    consumer.subscribe([args.topic])
    sink = ParquetSink(args.out)
    messages = reads = alerts = dead = 0
    first_at = last_at = None
    started = time.monotonic()
    while messages < args.expect and time.monotonic() - started < args.timeout:
        batch = consumer.consume(num_messages=10_000, timeout=0.5)
        for message in batch:
            if message.error():
                continue
            if first_at is None:
                first_at = time.monotonic()
            messages += 1
            try:
                rows = decode(message.value())
            except (ValueError, KeyError, TypeError, AttributeError, IndexError):
                dead += 1
                continue
            for index, row in enumerate(rows):
                plate_norm = norm_plate(row["plate"] or "")
                row["plate_norm"] = plate_norm
                row["read_id"] = f"{row['reader_id']}-{row['observed_at']}-{plate_norm}-{index}"
                row["source_partition"] = message.partition()
                row["source_offset"] = message.offset()
                sink.append(row)
                reads += 1
                for entry in hotlist.get(plate_norm, ()):
                    alerts += 1
                    if producer is not None:
                        alert = {"read": row, "list": entry["list"], "entry_plate": entry["plate"]}
                        producer.produce(args.alerts_topic, json.dumps(alert).encode())
        if batch:
            last_at = time.monotonic()
        if producer is not None:
            producer.poll(0)
        if sink.pending() >= ROW_GROUP:
            sink.flush()
            consumer.commit(asynchronous=False)
    sink.flush()
    if producer is not None:
        producer.flush(30)
    if messages:
        consumer.commit(asynchronous=False)
    consumer.close()
    active = (last_at - first_at) if first_at is not None and last_at is not None else 0.0
    print(
        json.dumps(
            {
                "messages": messages,
                "reads": reads,
                "rows_written": sink.rows,
                "files": sink.files,
                "alerts": alerts,
                "dead": dead,
                "active_seconds": active,
                "elapsed_seconds": time.monotonic() - started,
                "versions": {
                    "python": sys.version.split()[0],
                    "confluent_kafka": confluent_kafka.version()[0],
                    "librdkafka": confluent_kafka.libversion()[0],
                    "pyarrow": pa.__version__,
                },
            }
        )
    )
    return 0 if messages >= args.expect else 1


if __name__ == "__main__":
    sys.exit(main())

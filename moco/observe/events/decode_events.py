"""Interop check: decodes an event file with python3-protobuf through event.proto (the same
schema, compiled by protoc --python_out), reading the TFRecord framing and checking its CRCs
with an independent CRC-32C written here from the spec. Prints one line per event:
  version <file_version>  |  <step> <tag>=<value> ...
Usage: decode_events.py EVENT_FILE
"""
import struct
import sys

POLY = 0x82F63B78
TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ POLY if c & 1 else c >> 1
    TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(c):
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def main():
    try:
        from moco.observe.events import event_pb2
    except ImportError as e:  # the test script checks for python3-protobuf first
        sys.exit("cannot import the generated event_pb2: %s" % e)
    data = open(sys.argv[1], "rb").read()
    pos = 0
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert length_crc == masked(crc32c(header)), "length CRC at byte %d" % pos
        payload = data[pos + 12:pos + 12 + length]
        (payload_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert payload_crc == masked(crc32c(payload)), "payload CRC at byte %d" % pos
        event = event_pb2.Event()
        event.ParseFromString(payload)
        if event.file_version:
            print("version", event.file_version)
        else:
            print(event.step, " ".join("%s=%r" % (v.tag, v.simple_value)
                                       for v in event.summary.value))
        pos += 16 + length


if __name__ == "__main__":
    main()

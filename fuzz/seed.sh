#!/usr/bin/env bash
# Rebuilds the full seed corpora, fuzz/corpus/<target>/fx-*, from fixtures/. The small
# committed seeds (seed-*) are kept; fx-* files are not committed (see fuzz/.gitignore).
# Needs python3 (for zips and JSON). Usage: fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")"
exec python3 - <<'PY'
import io, json, re, zipfile
from pathlib import Path

FX = Path("../fixtures")
CORPUS = Path("corpus")
MAX = 2 << 20  # skip fixtures above 2 MiB
SEP = b"\0FUZZ-SEP\0"  # part separator of the debug_file target
BOUNDARY = "fuzz-boundary"  # multipart boundary of the multipart target


def put(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("fx-" + re.sub(r"[^A-Za-z0-9._+-]", "_", name))).write_bytes(data)


def small(p):
    return p.is_file() and p.stat().st_size <= MAX


# sourcemap: `minified \0 map`, and the bare map.
for d in sorted((FX / "js/out").iterdir()):
    for m in sorted(d.glob("*.map")):
        if not small(m):
            continue
        put("sourcemap", f"{d.name}-{m.name}", m.read_bytes())
        minified = m.with_suffix("")
        if small(minified):
            put("sourcemap", f"{d.name}-{minified.name}+map", minified.read_bytes() + b"\0" + m.read_bytes())

# js_scopes: one byte choosing the extension (0 .js, 1 .ts, 2 .tsx, 3 .jsx, 4 .mjs), the text.
KIND = {".js": 0, ".ts": 1, ".tsx": 2, ".jsx": 3, ".mjs": 4, ".cjs": 0}
for p in sorted((FX / "js/src").rglob("*")):
    if small(p) and p.suffix in KIND:
        put("js_scopes", str(p.relative_to(FX / "js/src")), bytes([KIND[p.suffix]]) + p.read_bytes())

# debug_file: every native fixture, and companions joined with SEP.
out = FX / "native/out"
for p in sorted(out.rglob("*")):
    if small(p) and not p.name.endswith(".txt"):
        put("debug_file", str(p.relative_to(out)), p.read_bytes())
def joined(*names):
    return SEP.join((out / n).read_bytes() for n in names)
for v in ["", "4"]:
    put("debug_file", f"c_splitdwarf{v}+dwo", joined(f"c_splitdwarf{v}", f"c_splitdwarf{v}-app.dwo", f"c_splitdwarf{v}-util.dwo"))
    put("debug_file", f"c_splitdwarf{v}+dwp", joined(f"c_splitdwarf{v}", f"c_splitdwarf{v}.dwp"))
put("debug_file", "c_pe.pdb+exe", joined("c_pe.pdb", "c_pe.exe"))
put("debug_file", "c_dwarf5.debug+exe", joined("c_dwarf5.debug", "c_dwarf5"))
put("debug_file", "c_dwarf5.sym+exe", joined("c_dwarf5.sym", "c_dwarf5"))

# minidump: mode byte 0 + a dump (walked with fixture CFI), mode byte 1 + a debug file
# (its CFI unwinds the fixture dump).
for p in sorted((FX / "minidump/out").iterdir()):
    if not small(p):
        continue
    if p.suffix == ".dmp":
        put("minidump", p.name, b"\0" + p.read_bytes())
    else:
        put("minidump", p.name, b"\1" + p.read_bytes())
for p in sorted((FX / "native/out").glob("*.sym")):
    put("minidump", "native-" + p.name, b"\1" + p.read_bytes())


# zip_bundle: bundles (manifest.json), plain zips, debug-file zips; bare and behind SYSB.
def zip_of(entries, prefix=b"", method=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    buf.write(prefix)  # offsets then count from the start of the whole file (sentry-cli)
    with zipfile.ZipFile(buf, "a" if prefix else "w", method) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()

js = FX / "js/out/terser"
manifest = json.dumps({
    "files": {
        "files/_/_/app.min.js": {"url": "~/app.min.js", "type": "minified_source",
                                  "headers": {"Sourcemap": "app.min.js.map"}},
        "files/_/_/app.min.js.map": {"url": "~/app.min.js.map", "type": "source_map"},
    },
    "release": "1.0", "debug_id": "a6cbc2c1-3c3b-4b8a-8e3f-2a4b0b1c6d7e",
}).encode()
bundle = [("manifest.json", manifest),
          ("files/_/_/app.min.js", (js / "app.min.js").read_bytes()),
          ("files/_/_/app.min.js.map", (js / "app.min.js.map").read_bytes())]
plain = [("static/app.min.js", (js / "app.min.js").read_bytes()),
         ("static/app.min.js.map", (js / "app.min.js.map").read_bytes())]
dsym = [("c_macho.dSYM/Contents/Resources/DWARF/c_macho",
         (out / "c_macho.dSYM/Contents/Resources/DWARF/c_macho").read_bytes()),
        ("c_dwarf5.sym", (out / "c_dwarf5.sym").read_bytes())]
SYSB = b"SYSB\x02\0\0\0"
for name, entries in [("bundle", bundle), ("plain", plain), ("dsym", dsym)]:
    z = zip_of(entries)
    put("zip_bundle", f"{name}.zip", z)
    put("zip_bundle", f"{name}-sysb-shifted.zip", SYSB + z)  # offsets from the end of the header
    put("zip_bundle", f"{name}-sysb.zip", zip_of(entries, SYSB))
    put("zip_bundle", f"{name}-stored.zip", zip_of(entries, method=zipfile.ZIP_STORED))


# multipart: bodies for POST /api/v1/projects/p/releases/1.0/files.
def form(parts):
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename:
            body += b"Content-Type: application/octet-stream\r\n"
        body += b"\r\n" + value + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()

minjs, mapjs = (js / "app.min.js").read_bytes(), (js / "app.min.js.map").read_bytes()
put("multipart", "min+map", form([("url", b"https://cdn.example.com/static/app.min.js", None),
                                   ("file", minjs, "app.min.js"),
                                   ("url", b"https://cdn.example.com/static/app.min.js.map", None),
                                   ("file", mapjs, "app.min.js.map")]))
put("multipart", "all-fields", form([("dist", b"prod", None), ("url_prefix", b"~/static", None),
                                      ("type", b"minified_source", None),
                                      ("header", b"Sourcemap: app.min.js.map", None),
                                      ("file", minjs, "app.min.js"),
                                      ("type", b"source_map", None), ("file", mapjs, "app.min.js.map"),
                                      ("type", b"source", None),
                                      ("file", (FX / "js/src/cart.js").read_bytes(), "src/cart.js")]))
put("multipart", "bundle", form([("file", zip_of(bundle), "bundle.zip")]))
put("multipart", "sysb-bundle", form([("file", zip_of(bundle, SYSB), "bundle.zip")]))
put("multipart", "plain-zip", form([("url_prefix", b"~/", None), ("file", zip_of(plain), "build.zip")]))

# symbolicate_json: JS requests (the whole input), native ones (`n` + body). The target's app
# holds release 1.0 (webpack's app.min.js + map) and c_dwarf5.
url = "https://cdn.example.com/static/app.min.js"
frames = [{"abs_path": url, "lineno": 1, "colno": c} for c in (1, 100, 558, 2000)]
for i, req in enumerate([
    {"release": "1.0", "stacktraces": [{"frames": frames}]},
    {"release": "1.0", "dist": "prod", "options": {"apply_source_context": False},
     "stacktraces": [{"frames": frames[:1]}, {"frames": [{"abs_path": url, "lineno": 1}]}]},
    {"modules": [{"type": "sourcemap", "code_file": url, "debug_id": "a6cbc2c1-3c3b-4b8a-8e3f-2a4b0b1c6d7e"}],
     "stacktraces": [{"frames": [{"abs_path": url, "lineno": 1, "colno": 10, "function": "f",
                                   "in_app": True, "context_line": "x"}]}]},
]):
    put("symbolicate_json", f"js-{i}.json", json.dumps(req).encode())
o = json.loads((FX / "native/oracle/c_dwarf5.json").read_text())
addrs = [s["addr"] for s in o["samples"][:12]]
for i, req in enumerate([
    {"modules": [{"type": "elf", "debug_id": o["debug_id"], "code_id": o["code_id"],
                  "image_addr": "0x7f0000000000", "image_size": 0x100000, "arch": "x86_64"}],
     "stacktraces": [{"frames": [{"instruction_addr": hex(0x7f0000000000 + int(a, 16))} for a in addrs]}]},
    {"modules": [{"type": "elf", "code_id": o["code_id"], "image_addr": 0x10000, "image_size": 4096,
                  "code_file": "/usr/bin/c_dwarf5"},
                 {"type": "macho", "debug_id": "00000000-0000-0000-0000-000000000001",
                  "image_addr": "0x20000", "image_size": 4096}],
     "options": {"apply_source_context": False},
     "stacktraces": [{"frames": [{"instruction_addr": "0x11139", "adjust_instruction_addr": False},
                                 {"instruction_addr": 0x20010}, {"instruction_addr": "0x1234"}]}]},
]):
    put("symbolicate_json", f"native-{i}.json", b"n" + json.dumps(req).encode())

for t in sorted(CORPUS.iterdir()):
    files = list(t.iterdir())
    print(f"{t.name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")
PY

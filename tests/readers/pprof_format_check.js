// Reads profiles with Datadog's pprof-format decoder (vendored in
// vendor/pprof-format: a JavaScript implementation of profile.proto that
// shares no code with Go's), checks what the decoder leaves unchecked, and
// prints for each file the same summary line as pprof_check.go, so
// readers_check.sh can compare the two readers' view of each profile.
//
// Usage: node pprof_format_check.js FILE...
//
// Checks: gzipped protobuf that decodes; string 0 is ""; every string
// index in range; every sample has one value per sample type and names
// existing locations; location, function and mapping ids nonzero and
// unique; every location's mapping and every line's function exist; and
// the profile encodes again to bytes that decode to the same summary (a
// field the decoder misread would not survive the round trip unchanged).
// Exits 1 after any failure, naming the file and the reason.
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const { Profile } = require(path.join(__dirname, 'vendor', 'pprof-format', 'index.js'));

function fail(message) {
  throw new Error(message);
}

function idTable(items, what) {
  const ids = new Set();
  for (const item of items) {
    const id = BigInt(item.id);
    if (id === 0n) fail(`${what} with id 0`);
    if (ids.has(id)) fail(`${what} id ${id} appears twice`);
    ids.add(id);
  }
  return ids;
}

function summarize(p) {
  const strings = p.stringTable.strings;
  const str = (index, what) => {
    const i = Number(index);
    if (!(i >= 0 && i < strings.length)) fail(`${what}: string index ${index} out of range`);
    return strings[i];
  };
  if (strings.length === 0 || strings[0] !== '') fail('string table does not start with ""');
  if (p.sampleType.length === 0) fail('no sample type');
  const types = p.sampleType.map((t) => `${str(t.type, 'sample type')}/${str(t.unit, 'unit')}`);
  const locations = idTable(p.location, 'location');
  const functions = idTable(p.function, 'function');
  const mappings = idTable(p.mapping, 'mapping');
  const sums = p.sampleType.map(() => 0n);
  p.sample.forEach((s, n) => {
    if (s.value.length !== p.sampleType.length)
      fail(`sample ${n} has ${s.value.length} values for ${p.sampleType.length} sample types`);
    // Values are int64 (a delta's can be negative, as Go's are), but the
    // decoder returns a varint above 2^63 as unsigned: read it as int64.
    s.value.forEach((v, i) => { sums[i] += BigInt.asIntN(64, BigInt(v)); });
    for (const id of s.locationId)
      if (!locations.has(BigInt(id))) fail(`sample ${n} names location ${id}, which is missing`);
    for (const l of s.label) {
      str(l.key, 'label key');
      str(l.str, 'label value');
      str(l.numUnit, 'label unit');
    }
  });
  for (const loc of p.location) {
    const m = BigInt(loc.mappingId);
    if (m !== 0n && !mappings.has(m)) fail(`location ${loc.id} names mapping ${m}, which is missing`);
    for (const line of loc.line)
      if (!functions.has(BigInt(line.functionId)))
        fail(`location ${loc.id} names function ${line.functionId}, which is missing`);
  }
  for (const f of p.function) {
    str(f.name, 'function name');
    str(f.systemName, 'function system name');
    str(f.filename, 'function file name');
  }
  for (const m of p.mapping) {
    str(m.filename, 'mapping file name');
    str(m.buildId, 'mapping build id');
  }
  for (const c of p.comment) str(c, 'comment');
  const defaultType = str(p.defaultSampleType, 'default sample type');
  if (defaultType !== '' && !p.sampleType.some((t) => strings[Number(t.type)] === defaultType))
    fail(`default sample type "${defaultType}" is none of ${types.join(',')}`);
  const period = p.periodType
    ? `${str(p.periodType.type, 'period type')}/${str(p.periodType.unit, 'period unit')}`
    : 'none';
  return `types=${types.join(',')} default=${defaultType} period=${period}:${BigInt(p.period)} ` +
    `samples=${p.sample.length} sums=${sums.join(',')} locations=${p.location.length} ` +
    `functions=${p.function.length} mappings=${p.mapping.length}`;
}

function check(file) {
  const data = fs.readFileSync(file);
  if (data.length < 2 || data[0] !== 0x1f || data[1] !== 0x8b)
    fail('not gzip: a pprof profile is gzipped protobuf');
  const raw = zlib.gunzipSync(data);
  const summary = summarize(Profile.decode(raw));
  const again = summarize(Profile.decode(Profile.decode(raw).encode()));
  if (again !== summary) fail(`re-encoded, it reads differently:\n  ${summary}\n  ${again}`);
  return summary;
}

if (process.argv.length < 3) {
  console.error('usage: node pprof_format_check.js FILE...');
  process.exit(2);
}
let failed = false;
for (const file of process.argv.slice(2)) {
  try {
    console.log(`${file} ${check(file)}`);
  } catch (e) {
    console.log(`${file}: ${e.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);

// Reads glmkit shards the way a JavaScript user would, with Apache Arrow JS
// (and, when asked, nodejs-polars), and prints what it sees as JSON:
//
//	node read_arrow.js SHARD.arrow ROW [polars]        one object
//	node read_arrow.js SHARD.arrow ROW,ROW,… [polars]  an array, one object a row
//	node read_arrow.js SHARD.arrow ROW polars-only     nodejs-polars alone
const fs = require("fs");
const arrow = require("apache-arrow");

const [file, rowArg, withPolars] = process.argv.slice(2);
const rows = String(rowArg || "0").split(",").map(Number);
const table = withPolars !== "polars-only" ? arrow.tableFromIPC(fs.readFileSync(file)) : null;
let df = null;
if (withPolars) {
  const pl = require("nodejs-polars");
  df = pl.readIPC(fs.readFileSync(file)); // a path not ending in .ipc would be read as inline data
}

function read(row) {
  const out = {};
  if (table) {
    Object.assign(out, {
      rows: table.numRows,
      batches: table.batches.length,
      fields: table.schema.fields.map((f) => ({ name: f.name, type: String(f.type) })),
      metadata: Object.fromEntries(table.schema.metadata),
      row: {},
    });
    const r = table.get(row);
    for (const f of table.schema.fields) {
      const v = r[f.name];
      if (v && typeof v.toArray === "function") out.row[f.name] = Array.from(v.toArray(), Number);
      else if (typeof v === "bigint") out.row[f.name] = v.toString();
      else out.row[f.name] = v;
    }
  }
  if (df) {
    const rec = df.slice(row, 1).toRecords()[0];
    out.polars = {
      rows: df.height,
      columns: df.columns,
      dtypes: Object.fromEntries(Object.entries(df.schema).map(([k, v]) => [k, String(v)])),
      input_ids: Array.from(rec.input_ids, Number),
      target_ids: Array.from(rec.target_ids, Number),
      position_ids: Array.from(rec.position_ids, Number),
      block_position_ids: Array.from(rec.block_position_ids, Number),
      loss_mask: Array.from(rec.loss_mask, Number),
      sep: Number(rec.sep),
      objective: String(rec.objective),
      doc_id: String(rec.doc_id),
      n_source: Number(rec.n_source),
    };
  }
  return out;
}

const outs = rows.map(read);
process.stdout.write(JSON.stringify(String(rowArg).includes(",") ? outs : outs[0]));

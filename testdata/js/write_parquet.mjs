// Writes a Parquet file with another writer than arrow-go, for glmkit's
// tests: node write_parquet.mjs TEXTS.json OUT.parquet ROWS_PER_GROUP
// (TEXTS.json is a JSON array of strings; null entries become nulls).
import fs from "fs";
import { parquetWriteBuffer } from "hyparquet-writer";

const [textsPath, out, rows] = process.argv.slice(2);
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
const buf = parquetWriteBuffer({
  columnData: [
    { name: "id", data: texts.map((_, i) => i), type: "INT32" },
    { name: "text", data: texts, type: "STRING" },
  ],
  rowGroupSize: Number(rows || 1000),
});
fs.writeFileSync(out, Buffer.from(buf));

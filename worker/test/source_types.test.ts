/** The source-type map: every type the shared schema allows has its module, and nothing else compares types. */
import { describe, expect, it } from "vitest";
import sourceSchema from "../../config/source.schema.json";
import { DELIVERY_SOURCE_TYPES, receivesDeliveries, SOURCE_TYPES, sourceTypeOf, tableKeys } from "../src/source_types";
import { definition } from "./helpers";

describe("source types", () => {
  it("maps exactly the source types config/source.schema.json allows", () => {
    expect(Object.keys(SOURCE_TYPES).sort()).toEqual([...sourceSchema.properties.source_type.enum].sort());
  });

  it("names an unknown source_type and the known ones", () => {
    expect(() => sourceTypeOf({ source_type: "ftp_files" })).toThrow(
      `source_type "ftp_files" is not one of ${Object.keys(SOURCE_TYPES).join(", ")}`,
    );
    expect(() => sourceTypeOf({ source_type: "toString" })).toThrow('source_type "toString" is not one of');
    expect(receivesDeliveries({ source_type: "ftp_files" })).toBe(false);
    expect(receivesDeliveries(null)).toBe(false);
  });

  it("a KV source loads its destination table and receives no deliveries", () => {
    const kv = definition("types_kv") as Parameters<typeof tableKeys>[0];
    expect(tableKeys(kv)).toEqual([["source_cloudflare", "types_kv_t"]]);
    expect(receivesDeliveries(kv)).toBe(false);
    expect(DELIVERY_SOURCE_TYPES).toEqual(["webhook"]);
  });
});

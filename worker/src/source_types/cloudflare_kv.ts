/** cloudflare_kv: keys of one KV namespace into destination.table, partitioned by `extract.incremental` windows. */
import type { KVExtract } from "../definitions";
import type { SourceDefinition } from "../validation";
import { singleTable, type PartitionWindows, type SourceType } from "./types";

export const cloudflareKv: SourceType = {
  ...singleTable,
  partitions(definition: SourceDefinition): PartitionWindows | null {
    // KV key-prefix windows; a definition may keep them switched off (enabled: false).
    const { incremental } = definition.extract as unknown as KVExtract;
    return incremental && incremental.enabled !== false ? incremental : null;
  },
  receivesDeliveries: false,
};

/**
 * webhook: deliveries received at /hooks/:source_id (routes/hooks.ts, verified as extract.signature says), staged
 * in D1 and R2 and loaded into destination.table. Not partitioned.
 */
import { singleTable, type SourceType } from "./types";

export const webhook: SourceType = {
  ...singleTable,
  partitions: () => null,
  receivesDeliveries: true,
};

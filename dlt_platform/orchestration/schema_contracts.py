"""A source's schema contract as a Dagster asset check of each of its tables.

A load the contract refuses (`freeze`) fails its run and records a failed check evaluation from inside the asset
step, since the check's own step never runs after a failed materialization. A load that succeeds runs the check:
it passes, with the rows the contract discarded (`discard_row`) as metadata.
"""

import dagster as dg

from dlt_platform.config import SourceDefinition

SCHEMA_CONTRACT_CHECK = "schema_contract"
ROWS_DISCARDED = "rows_discarded_by_contract"  # materialization metadata of a source with a contract


def has_contract(definition: SourceDefinition) -> bool:
    return definition.schema_contract not in (None, "evolve")


def key_of_table(keys: list[dg.AssetKey], table: str) -> dg.AssetKey:
    """The asset of a table the source loads; a child table `x__y` belongs to its parent's asset."""
    return next((key for key in keys if table == key.path[-1] or table.startswith(f"{key.path[-1]}__")), keys[0])


def contract_metadata(definition: SourceDefinition) -> dg.MetadataValue:
    # Shown for sources that have a contract (has_contract); without one dlt evolves everything.
    contract = definition.dlt_schema_contract
    return dg.MetadataValue.json(contract if contract is not None else "evolve")


def report_violation(
    context: dg.AssetExecutionContext, definition: SourceDefinition, keys: list[dg.AssetKey], table: str, message: str
) -> None:
    context.log_event(
        dg.AssetCheckEvaluation(
            asset_key=key_of_table(keys, table),
            check_name=SCHEMA_CONTRACT_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=message,
            metadata={"contract": contract_metadata(definition), "table": table},
        )
    )


def build_contract_checks(definition: SourceDefinition, keys: list[dg.AssetKey]) -> list[dg.AssetChecksDefinition]:
    if not has_contract(definition):
        return []
    return [_contract_check(definition, key) for key in keys]


def _contract_check(definition: SourceDefinition, key: dg.AssetKey) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=key,
        name=SCHEMA_CONTRACT_CHECK,
        description=f"The source's schema contract {definition.dlt_schema_contract} held; a refused "
        "load fails this check and loads nothing.",
    )
    def schema_contract(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        latest = context.instance.get_latest_materialization_event(key)
        metadata = (latest.asset_materialization.metadata or {}) if latest and latest.asset_materialization else {}
        discarded = metadata.get(ROWS_DISCARDED)
        return dg.AssetCheckResult(
            passed=True,
            metadata={
                "contract": contract_metadata(definition),
                ROWS_DISCARDED: discarded.value if discarded is not None else 0,
            },
        )

    return schema_contract

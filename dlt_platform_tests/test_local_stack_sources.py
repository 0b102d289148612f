from dlt_platform.local.stack import LocalStack, StackPaths
from dlt_platform.settings import Settings


def test_the_sample_sources_follow_the_stacks_sample_api_port(tmp_path):
    stack = LocalStack(paths=StackPaths(state_dir=tmp_path / "state", data_dir=tmp_path / "data"), sample_api_port=18790)
    configured = {d.source_id: d.model_dump(mode="json") for d in Settings(config_path=stack.config_path).load_sources()}
    registered = {d["source_id"]: d for d in stack.definitions()}
    assert set(registered) == set(configured)
    moved = [source_id for source_id in registered if registered[source_id] != configured[source_id]]
    assert moved == ["sample_api_issues"]
    assert registered["sample_api_issues"]["extract"]["client"]["base_url"] == "http://127.0.0.1:18790"
    assert configured["sample_api_issues"]["extract"]["client"]["base_url"] == "http://127.0.0.1:8790"

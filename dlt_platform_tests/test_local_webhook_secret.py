"""The local stack gives the Worker a webhook signing secret: generated once, kept, usable by every preset."""
import base64

from dlt_platform.local.stack import LOCAL_WEBHOOK_SECRET, LocalStack, StackPaths, read_env_file


def test_the_local_webhook_secret_is_generated_once_and_kept(tmp_path):
    stack = LocalStack(paths=StackPaths(state_dir=tmp_path / "state", data_dir=tmp_path / "data"))
    secret = stack.tokens()[LOCAL_WEBHOOK_SECRET]
    # whsec_<base64>: svix decodes the key after the prefix, the other presets use the string as it is.
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert stack.tokens()[LOCAL_WEBHOOK_SECRET] == secret
    assert read_env_file(stack.paths.worker_env)[LOCAL_WEBHOOK_SECRET] == secret
    other = LocalStack(paths=StackPaths(state_dir=tmp_path / "other", data_dir=tmp_path / "data"))
    assert other.tokens()[LOCAL_WEBHOOK_SECRET] != secret

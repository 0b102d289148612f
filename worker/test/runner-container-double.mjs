// Stands in for @cloudflare/containers' Container behind the RUNNER binding (no container runtime here): a real
// Durable Object reached through getContainer(RUNNER, name), with the library's documented RPC methods and state
// shapes: getState() -> {status: "stopped" | "running" | "stopped_with_code", exitCode?}, start({entrypoint,
// envVars, enableInternet}), stop(signal), destroy(). __seen() and __exit(code) let tests read what it was given
// and end its "process".
import { DurableObject } from "cloudflare:workers";

export class RunnerContainerDouble extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.state = { status: "stopped", lastChange: Date.now() };
    this.starts = [];
    this.signals = [];
  }

  async getState() {
    return this.state;
  }

  async start(options) {
    this.starts.push({ entrypoint: options?.entrypoint, envVars: options?.envVars, enableInternet: options?.enableInternet });
    this.state = { status: "running", lastChange: Date.now() };
  }

  async stop(signal = "SIGTERM") {
    this.signals.push(signal);
    // This "process" ignores SIGTERM: only destroy() ends it.
  }

  async destroy() {
    this.signals.push("SIGKILL");
    this.state = { status: "stopped_with_code", exitCode: 137, lastChange: Date.now() };
  }

  async __exit(code) {
    this.state = { status: "stopped_with_code", exitCode: code, lastChange: Date.now() };
  }

  async __seen() {
    return { starts: this.starts, signals: this.signals };
  }
}

// One class per runner class of wrangler.toml (an instance type each): the same double, its own namespace.
export class RunnerLiteContainerDouble extends RunnerContainerDouble {}
export class RunnerBasicContainerDouble extends RunnerContainerDouble {}
export class RunnerStandard2ContainerDouble extends RunnerContainerDouble {}
export class RunnerStandard3ContainerDouble extends RunnerContainerDouble {}
export class RunnerStandard4ContainerDouble extends RunnerContainerDouble {}

export default { fetch: () => new Response("runner container double") };

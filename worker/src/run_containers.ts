/**
 * Run containers: one per Dagster run, started with exactly that run's command and environment.
 *
 * One interface, two implementations, chosen by configuration:
 * - production: the RUNNER container class (@cloudflare/containers), one instance per run, getContainer(RUNNER, name);
 * - local and tests (wrangler dev runs no containers without Docker): the local run-container host at
 *   RUN_CONTAINER_HOST_URL (dlt_platform/local/run_container_host.py), one process per run, same contract.
 * The internal API (routes/run_containers.ts) and Dagster's launcher cannot tell them apart.
 *
 * Sizes: Cloudflare fixes a container's instance type per class (wrangler.toml), so each instance type a source may
 * name (runner.instance_type) has its own runner class and binding (RUNNER_BINDINGS). The local host cannot give a
 * process a size: it records the one asked for.
 */
import { getContainer } from "@cloudflare/containers";
import type { RunnerContainer } from "./container";
import type { Runner } from "./definitions";
import { ApiError } from "./errors";
import type { Env } from "./env";

export type InstanceType = NonNullable<Runner["instance_type"]>;
export const DEFAULT_INSTANCE_TYPE: InstanceType = "standard-1";

/** The runner class binding of each instance type (wrangler.toml [[containers]] and [[durable_objects.bindings]]). */
export const RUNNER_BINDINGS = {
  lite: "RUNNER_LITE",
  basic: "RUNNER_BASIC",
  "standard-1": "RUNNER",
  "standard-2": "RUNNER_STANDARD_2",
  "standard-3": "RUNNER_STANDARD_3",
  "standard-4": "RUNNER_STANDARD_4",
} as const satisfies Record<InstanceType, keyof Env>;

export function isInstanceType(value: unknown): value is InstanceType {
  return typeof value === "string" && Object.hasOwn(RUNNER_BINDINGS, value);
}

/** The instance type a source's definition asks for (runner.instance_type), else the default standard-1. */
export function instanceTypeOf(definition: unknown): InstanceType {
  const runner = typeof definition === "object" && definition !== null ? (definition as { runner?: unknown }).runner : null;
  const type = typeof runner === "object" && runner !== null ? (runner as { instance_type?: unknown }).instance_type : null;
  return isInstanceType(type) ? type : DEFAULT_INSTANCE_TYPE;
}

export type RunContainerState =
  | { status: "running" }
  | { status: "exited"; exit_code: number | null; reason: string | null }
  | { status: "not_found" };

/** Every call names the run container's instance type: in production it is the class the container lives in. */
export interface RunContainers {
  /** Starts `command` under `name` unless it is already running; `started` says which. */
  start(
    name: string,
    instanceType: InstanceType,
    command: string[],
    env: Record<string, string>,
  ): Promise<{ started: boolean; state: RunContainerState }>;
  state(name: string, instanceType: InstanceType): Promise<RunContainerState>;
  /** SIGTERM now, SIGKILL (destroy) after `graceSeconds` if it is still running. */
  stop(
    name: string,
    instanceType: InstanceType,
    graceSeconds: number,
    later: (work: Promise<unknown>) => void,
  ): Promise<RunContainerState>;
}

const notConfigured = () =>
  new ApiError(503, "run_containers_unavailable", "no run containers: set the RUNNER binding or RUN_CONTAINER_HOST_URL");

/** The implementation this deployment has: the local host when RUN_CONTAINER_HOST_URL is set, else RUNNER. */
export function runContainers(env: Env): RunContainers {
  const hostUrl = (env.RUN_CONTAINER_HOST_URL ?? "").trim();
  if (hostUrl) return localHost(hostUrl, env.DLT_INTERNAL_TOKEN ?? "");
  if (env.RUNNER) return cloudflareContainers(env);
  throw notConfigured();
}

// --- Cloudflare Containers ------------------------------------------------------------------------------------

/** Cloudflare's container states (State.status) as the contract's three. */
export function fromContainerState(state: { status: string; exitCode?: number }): RunContainerState {
  switch (state.status) {
    case "running":
    case "healthy":
    case "stopping":
      return { status: "running" };
    case "stopped_with_code":
      return { status: "exited", exit_code: state.exitCode ?? null, reason: "exit" };
    default:
      // "stopped" is also the state of an instance that never started: nothing to report about this name.
      return { status: "not_found" };
  }
}

function cloudflareContainers(env: Env): RunContainers {
  const instance = (name: string, instanceType: InstanceType) => {
    const binding = RUNNER_BINDINGS[instanceType];
    const namespace = env[binding] as DurableObjectNamespace<RunnerContainer> | undefined;
    if (!namespace) {
      throw new ApiError(
        503,
        "run_containers_unavailable",
        `runner.instance_type ${instanceType} needs the ${binding} binding (its runner class in wrangler.toml)`,
      );
    }
    return getContainer(namespace, name);
  };
  return {
    async start(name, instanceType, command, envVars) {
      const container = instance(name, instanceType);
      const before = fromContainerState(await container.getState());
      if (before.status === "running") return { started: false, state: before };
      await container.start({ entrypoint: command, envVars, enableInternet: true });
      return { started: true, state: fromContainerState(await container.getState()) };
    },
    async state(name, instanceType) {
      return fromContainerState(await instance(name, instanceType).getState());
    },
    async stop(name, instanceType, graceSeconds, later) {
      const container = instance(name, instanceType);
      const state = fromContainerState(await container.getState());
      if (state.status !== "running") return state;
      await container.stop("SIGTERM");
      later(
        (async () => {
          await scheduler.wait(graceSeconds * 1000);
          if (fromContainerState(await container.getState()).status === "running") await container.destroy();
        })(),
      );
      return state;
    },
  };
}

// --- the local run-container host ------------------------------------------------------------------------------

function localHost(baseUrl: string, token: string): RunContainers {
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; document: any }> => {
    let response: Response;
    try {
      response = await fetch(`${baseUrl.replace(/\/$/, "")}${path}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(502, "run_container_host_unreachable", "the run-container host (RUN_CONTAINER_HOST_URL) does not answer");
    }
    const document: any = await response.json().catch(() => ({}));
    if (response.status >= 400 && response.status !== 404) {
      // The host names the field it refused (command, env); never a value.
      const message = typeof document?.message === "string" ? document.message : `status ${response.status}`;
      throw new ApiError(502, "run_container_start_failed", `run-container host: ${message}`);
    }
    return { status: response.status, document };
  };
  const toState = (document: any): RunContainerState =>
    document?.status === "running"
      ? { status: "running" }
      : document?.status === "exited"
        ? { status: "exited", exit_code: document.exit_code ?? null, reason: document.reason ?? null }
        : { status: "not_found" };
  const path = (name: string) => `/containers/${encodeURIComponent(name)}`;
  // Names are unique across sizes here: state and stop need no instance type; the start records it.
  return {
    async start(name, instanceType, command, env) {
      const { status, document } = await call("POST", `${path(name)}/start`, { command, env, instance_type: instanceType });
      return { started: status === 201, state: toState(document) };
    },
    async state(name) {
      return toState((await call("GET", path(name))).document);
    },
    async stop(name, graceSeconds) {
      return toState((await call("POST", `${path(name)}/stop`, { grace_seconds: graceSeconds })).document);
    },
  };
}

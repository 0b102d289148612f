/** Worker-side helpers for the loopback webhook receiver started by alert-receiver.global.mjs. */
import { inject, vi } from "vitest";
import { uniqueId } from "./helpers";

declare module "vitest" {
  export interface ProvidedContext {
    alertReceiverUrl: string;
  }
}

// Taken at import, before setup.ts replaces fetch for each test: the receiver is reached over real loopback HTTP.
const realFetch = globalThis.fetch;

export interface Box {
  attempts: number;
  bodies: { text: string; blocks?: any[] }[];
  content_types: (string | null)[];
}

/** A fresh mailbox on the receiver: the webhook URL to configure, and what it received. */
export function alertBox(options: { fail?: number } = {}) {
  const base = inject("alertReceiverUrl");
  const name = uniqueId("box");
  return {
    url: `${base}/hooks/${name}${options.fail ? `?fail=${options.fail}` : ""}`,
    async read(): Promise<Box> {
      return (await (await realFetch(`${base}/boxes/${name}`)).json()) as Box;
    },
  };
}

/** Lets the Worker's requests to the receiver through to the network; others still reach the test's double. */
export function passReceiverThrough() {
  const base = inject("alertReceiverUrl");
  const spy = vi.mocked(globalThis.fetch);
  const double = spy.getMockImplementation();
  spy.mockImplementation((input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (url.startsWith(`${base}/`)) return realFetch(input, init);
    if (!double) throw new Error(`unexpected request ${url}`);
    return double(input, init);
  });
}

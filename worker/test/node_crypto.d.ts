// The part of node:crypto the webhook tests sign with (workerd provides the module under nodejs_compat); the
// project has no @types/node, whose globals would clash with the Workers types.
declare module "node:crypto" {
  interface Hmac {
    update(data: string | Uint8Array): Hmac;
    digest(encoding: "hex" | "base64"): string;
  }
  export function createHmac(algorithm: "sha1" | "sha256" | "sha512", key: string | Uint8Array): Hmac;
}

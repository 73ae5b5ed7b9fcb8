/** A free loopback TCP port, for a process we start that needs its port before it listens. */
export function freePort(): Promise<number>;

/**
 * Splitting a 64-bit hash (a bigint) into its uint32 halves, and joining them, without allocating: write the bigint
 * into `U64[0]` and read `U64_HALVES[HI]` and `U64_HALVES[LO]`, or the other way round. One shared scratch for the
 * whole process (JavaScript is single-threaded per isolate; nothing awaits between the write and the reads).
 * `LO` = 0 and `HI` = 1 hold on little-endian hosts, every platform Node ships for.
 */
export const U64 = new BigUint64Array(1);
export const U64_HALVES = new Uint32Array(U64.buffer);
export const LO = 0;
export const HI = 1;

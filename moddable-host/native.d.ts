/** Types of native.js (host functions in host.c). Offsets are byte offsets in the whole flash image. */
export declare function args(): string[];
export declare function exit(status: number): never;
export declare function write(text: string): void;
/** Opens the raw flash image read-write; returns its size in bytes. */
export declare function flashOpen(path: string): number;
export declare function flashRead(offset: number, target: Uint8Array): void;
/** NOR programming: the stored bytes become old AND data. */
export declare function flashWrite(offset: number, data: Uint8Array): void;
export declare function flashErase(offset: number, length: number): void;
export declare function freeHeap(): number;
/**
 * [chunk bytes in use, slots in use, peak chunk bytes, peak slots, chunk heap bytes, slot heap
 * count, stack slots used at most, stack slots, bytes per slot, stack slots the regular expression
 * engine took from the bottom]; collect runs a full GC first.
 */
export declare function memory(collect: boolean): number[];
/** After a full GC, prints what the live slots and chunks are (host.c xs_host_census: "@census ..." lines). */
export declare function census(): void;

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

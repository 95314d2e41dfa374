/*
 * The classic "http" client as modules/network/http/http.js (SDK 8.2.3) really behaves. Replaces
 * @moddable/typings' http.d.ts in tsconfig.device.json: that file (and the SDK's typings/http.d.ts)
 * says error = -1 and types responseFragment as 3; http.js sets error = -2 and responseFragment = 4.
 * src/http.ts compiles against both (it compares plain numbers).
 */
declare module "http" {
  export interface RequestOptions {
    host: string;
    port?: number;
    path?: string;
    method?: string;
    /** Flat [name, value, name, value, ...]. */
    headers?: (string | number)[];
    body?: boolean | string | ArrayBuffer;
    response?: typeof String | typeof ArrayBuffer;
    Socket?: unknown;
    secure?: Record<string, unknown>;
  }
  /** 0 requestFragment, 1 status, 2 header, 3 headersComplete, 4 responseFragment, 5 responseComplete, -2 error. */
  export type RequestMessage = -2 | 0 | 1 | 2 | 3 | 4 | 5;
  export class Request {
    constructor(options: RequestOptions);
    close(): void;
    read(): number;
    read(type: typeof ArrayBuffer, until?: number): ArrayBuffer;
    read(type: typeof String, until?: number): string;
    read(type: null, until?: number): number;
    callback: (this: Request, message: RequestMessage, value1?: any, value2?: any) => unknown;
    static readonly requestFragment: 0;
    static readonly status: 1;
    static readonly header: 2;
    static readonly headersComplete: 3;
    static readonly responseFragment: 4;
    static readonly responseComplete: 5;
    static readonly error: -2;
  }
}

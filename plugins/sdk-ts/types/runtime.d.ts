// The web APIs the component's JavaScript engine (StarlingMonkey) provides and the SDK
// uses, for `tsc` with `lib: ["ES2022"]` (the DOM library would promise much more).
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  decode(input?: Uint8Array): string;
}

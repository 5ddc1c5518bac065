declare module 'wasi:io/poll@0.2.0' {
  
  export class Pollable implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    block(): void;
    [Symbol.dispose](): void;
  }
}

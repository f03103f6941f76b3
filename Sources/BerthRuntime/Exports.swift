// The spec types live in BerthOCI (shared with the engine, which must not link the runtime's internals);
// re-exported so that `import BerthRuntime` keeps offering them.
@_exported import BerthOCI

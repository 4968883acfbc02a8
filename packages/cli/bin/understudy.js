#!/usr/bin/env node
// Thin entry: everything lives in src/. The package imports itself so that the
// `@understudy/source` condition (used by the tests) runs the TypeScript sources.
import { main } from '@understudy/cli';

process.exitCode = await main(process.argv.slice(2));

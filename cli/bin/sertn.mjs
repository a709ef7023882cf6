#!/usr/bin/env node
// The `sertn` executable (package.json `bin`): runs the TypeScript command line through tsx's loader,
// so that an installed or linked checkout (`npm link`, `npm install -g .`) needs no build step.
import { register } from 'tsx/esm/api'

register()
await import('../sertn.ts')

#!/usr/bin/env node
require("../lib/launch.js").launch("mcp-secure-remote-client");

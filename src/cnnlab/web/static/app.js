// cnnlab's page: draws what the API returns; every number comes from the cnnlab library on the server. Each
// panel is a module of its own (runs, input, checks, maps, graph, cell, testset, curves, health, playground)
// over one state object (state.js); this one wires them up and starts the page.
import { setUpCell } from "./cell.js";
import { setUpChecks } from "./checks.js";
import { setUpCurves } from "./curves.js";
import { setUpGraph } from "./graph.js";
import { refresh, resetOutputs, setUpInput } from "./input.js";
import { setUpMaps } from "./maps.js";
import { playground, setUpPlayground } from "./playground.js";
import { loadRuns, setUpRuns } from "./runs.js";
import { showError, state } from "./state.js";
import { setUpTestSet } from "./testset.js";

for (const setUp of [setUpInput, setUpChecks, setUpMaps, setUpGraph, setUpCell, setUpTestSet, setUpCurves, setUpPlayground, setUpRuns]) setUp();
loadRuns().catch((err) => showError(err.message));
playground();
window.cnnlab = { state, refresh };
resetOutputs();

// execa, as kod loads it. Built, this module is replaced by one file holding execa and the packages it imports
// (scripts/vendor.mjs): loading execa's hundred-odd modules one by one took ~75 ms of every command's start, the
// one file ~20 ms (docs/performance.md). Run from source (the unit tests, through tsx), it is execa itself.
export {execa, type ExecaError} from 'execa'

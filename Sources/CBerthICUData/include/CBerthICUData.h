// CBerthICUData has no C interface: its assembly defines the ICU data symbol the static link needs
// (see icudata.S and scripts/gen-icu-subset.py). This header exists because SwiftPM wants one.

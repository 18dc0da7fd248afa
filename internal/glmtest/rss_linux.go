package glmtest

// maxrssUnit is the unit of ru_maxrss: KiB on Linux.
const maxrssUnit = 1024

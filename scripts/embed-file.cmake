# cmake -DINPUT=FILE -DOUTPUT=FILE.c -DSYMBOL=NAME -P embed-file.cmake
#
# Writes FILE's bytes as a C array, so that a file kept in the tree as
# itself (web/report.html: readable, diffable, testable on its own) is part
# of the binary with nothing to find at run time:
#   const unsigned char NAME[] = {...};  const unsigned long NAME_len = N;
# The array ends with an extra 0 that NAME_len does not count.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" nhex)
math(EXPR nbytes "${nhex} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# Lines of 32 bytes, for a compiler that dislikes one enormous line.
string(REGEX REPLACE "((0x..,){32})" "\\1\n" bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "/* Generated from ${INPUT} by scripts/embed-file.cmake: do not edit. */\n"
  "const unsigned char ${SYMBOL}[] = {\n${bytes}0x00};\n"
  "const unsigned long ${SYMBOL}_len = ${nbytes};\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")

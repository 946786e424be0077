file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
file(WRITE ${OUT} "#include <string_view>\nnamespace moat::embedded {\nnamespace { const char kData[] = {${bytes} 0}; }\nstd::string_view ${NAME}() { return std::string_view(kData, sizeof(kData) - 1); }\n}  // namespace moat::embedded\n")

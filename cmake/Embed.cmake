# moat_embed(OUT_VAR NAME FILE): generates a .cc defining
#   std::string_view moat::embedded::NAME()
# that returns FILE's bytes, and appends the .cc path to OUT_VAR.
function(moat_embed out_var name file)
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/embed_${name}.cc)
  add_custom_command(
    OUTPUT ${gen}
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${gen} -DNAME=${name}
            -P ${CMAKE_SOURCE_DIR}/cmake/EmbedFile.cmake
    DEPENDS ${file} ${CMAKE_SOURCE_DIR}/cmake/EmbedFile.cmake
    COMMENT "Embedding ${file}")
  set(${out_var} ${${out_var}} ${gen} PARENT_SCOPE)
endfunction()

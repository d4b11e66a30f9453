# switchboard_add_contract(<target> <file.proto>... [IMPORT_DIRS <dir>...])
#
# Generates the C code of a service contract and compiles it into <target>:
#
#   add_executable(items_server main.c)
#   switchboard_add_contract(items_server proto/items.proto)
#   # main.c: #include "items.sb.h" ... items__v1__item_service__register(rpc, &handlers, ud)
#
# For each <file.proto>, protoc runs once with two generators, writing into
# ${CMAKE_CURRENT_BINARY_DIR}/<target>_gen:
#   - protoc-gen-c (protobuf-c):          <stem>.pb-c.h, <stem>.pb-c.c (messages);
#   - protoc-gen-switchboard (this tree): <stem>.sb.h, <stem>.sb.c (handler table, register
#     function, sb_service_desc_t; see src/contract/plugin/emit_c.h), and <stem>.trpc.d.ts
#     (the tRPC AppRouter type for TypeScript clients; src/contract/plugin/emit_ts.h).
# The .proto is named to protoc relative to its own directory (items.proto, not
# proto/items.proto), which is also the name reflection clients see. Imports resolve against,
# in order: that directory, the IMPORT_DIRS, ${SB_PROTO_DIR} (google/api/annotations.proto,
# google/api/http.proto, switchboard/options.proto) and the system protobuf include directory
# (google/protobuf/*.proto).
#
# <target> gets the generated sources, the output directory as a PUBLIC include directory, and
# links sb_contract_protos (protobuf-c code of the well-known types, descriptor.proto and the
# option protos, which generated code of contracts that import them needs; plus the
# switchboard headers). It does not link libswitchboard: a target that registers services
# links switchboard_static (or _shared) itself. Contract files that import each other must be
# passed in the same call.
#
# Requires src/contract/plugin to have been added (it defines protoc-gen-switchboard,
# sb_contract_protos and the SB_PROTOC* cache variables).
function(switchboard_add_contract target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "IMPORT_DIRS")
  set(protos ${arg_UNPARSED_ARGUMENTS})
  if(NOT TARGET ${target})
    message(FATAL_ERROR "switchboard_add_contract: ${target} is not a target")
  endif()
  if(NOT protos)
    message(FATAL_ERROR "switchboard_add_contract(${target}): no .proto files given")
  endif()
  if(NOT TARGET protoc-gen-switchboard)
    message(FATAL_ERROR "switchboard_add_contract: add_subdirectory(src/contract/plugin) first")
  endif()

  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target}_gen)
  set(generated)
  foreach(proto ${protos})
    get_filename_component(abs ${proto} ABSOLUTE)
    get_filename_component(dir ${abs} DIRECTORY)
    get_filename_component(name ${abs} NAME)
    if(NOT name MATCHES "\\.proto$")
      message(FATAL_ERROR "switchboard_add_contract(${target}): ${proto} is not a .proto file")
    endif()
    string(REGEX REPLACE "\\.proto$" "" stem ${name})
    set(outputs ${out}/${stem}.pb-c.c ${out}/${stem}.pb-c.h ${out}/${stem}.sb.c
        ${out}/${stem}.sb.h ${out}/${stem}.trpc.d.ts)
    set(import_args -I${dir})
    foreach(d ${arg_IMPORT_DIRS} ${SB_PROTO_DIR} ${SB_PROTOBUF_INCLUDE_DIR})
      get_filename_component(d ${d} ABSOLUTE)
      list(APPEND import_args -I${d})
    endforeach()
    # protoc's depfile lists every .proto the file imports, so editing one re-generates.
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out}
      COMMAND ${SB_PROTOC} --plugin=protoc-gen-c=${SB_PROTOC_GEN_C}
              --plugin=protoc-gen-switchboard=$<TARGET_FILE:protoc-gen-switchboard>
              --c_out=${out} --switchboard_out=${out} --dependency_out=${out}/${stem}.d
              ${import_args} ${abs}
      DEPENDS ${abs} protoc-gen-switchboard
      DEPFILE ${out}/${stem}.d
      COMMENT "Generating C for contract ${name} (${target})"
      VERBATIM)
    set_source_files_properties(${out}/${stem}.pb-c.c PROPERTIES
                                COMPILE_OPTIONS "${SB_PROTOBUF_C_GENERATED_OPTIONS}")
    list(APPEND generated ${outputs})
  endforeach()

  target_sources(${target} PRIVATE ${generated})
  target_include_directories(${target} PUBLIC ${out})
  target_link_libraries(${target} PUBLIC sb_contract_protos)
  add_dependencies(${target} protoc-gen-switchboard)
endfunction()

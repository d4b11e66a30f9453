/*
 * Subcommands of the switchboard binary, one file each; main.c dispatches on argv[1].
 */
#ifndef SB_CLI_CLI_H
#define SB_CLI_CLI_H

/* switchboard gen [--out DIR] [-I DIR]... FILE.proto... (gen.c). argv holds the arguments
 * after "gen". Returns the process exit status: 0, 1 (a tool failed) or 2 (usage). */
int sb_cli_gen(int argc, char **argv);

/* The broker commands against a running server (broker_cmd.c): queue, send, recv, tail, dlq,
 * stats, stream, append, publish. sb_cli_is_broker() says whether cmd is one of them;
 * sb_cli_broker() runs it with the arguments after the command word and returns the exit status: 0,
 * 1 (the server answered an error or was unreachable) or 2 (usage). sb_cli_broker_usage() is the
 * help text's section (static). */
int sb_cli_is_broker(const char *cmd);
int sb_cli_broker(const char *cmd, int argc, char **argv);
const char *sb_cli_broker_usage(void);

#endif

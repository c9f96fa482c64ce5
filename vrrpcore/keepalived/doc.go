// Package keepalived reads keepalived.conf, the configuration VRRP users
// already have, into a typed Config: global_defs, vrrp_instance, vrrp_script
// and vrrp_sync_group, with the defaults keepalived 2.2 applies.
//
// The reader follows keepalived 2.2.7 (its lib/parser.c and what
// `keepalived -t` and `keepalived -d` do with each construct):
//
//   - comments start at '#' or '!' outside double quotes ("//" is not a
//     comment; single quotes do not protect a comment character);
//   - a word starting with '"' runs to the next '"'; braces cut a line
//     anywhere outside double quotes, so a block may open on the keyword's
//     line or on a later one, and may close on the same line;
//   - include FILE (and includer/m/w/b/a) takes the rest of the line as a
//     glob(3) pattern with csh braces, relative to the directory of the
//     including file; matches are read in sorted order, directories and
//     executable files skipped, and the include may stand inside a block;
//   - "@id" conditional lines and single-line "$NAME=value" definitions
//     with $NAME / ${NAME} substitution are supported; multi-line
//     definitions and ~SEQ blocks are reported as unsupported;
//   - notify and script command lines are split into argv as keepalived
//     splits them, with quotes and backslash escapes.
//
// Include loops are an error (keepalived recurses until it runs out of file
// descriptors), and Limits bound the files, bytes and nesting one parse may
// read.
//
// What keepalived itself refuses (a value out of range, an unknown state, a
// missing virtual_router_id, unbalanced braces, two instances with one VRID
// on one interface) is an Error with its file:line:column; Parse returns all
// of them as an ErrorList. What keepalived changes while reading (a password
// longer than 8 characters, a fractional VRRPv2 interval, nopreempt with
// state MASTER, an address of the other family) is applied as keepalived
// applies it and reported as a Warning; so are keywords vrrpdoctor does not
// use, unknown keywords, and settings that are valid but probably wrong.
// CheckHost adds what needs the machine (interfaces, owned addresses, script
// users); Check does both, like `keepalived -t`.
package keepalived

# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_filetrigger_global_optspecs
    string join \n config= h/help V/version
end

function __fish_filetrigger_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_filetrigger_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_filetrigger_using_subcommand
    set -l cmd (__fish_filetrigger_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c filetrigger -n "__fish_filetrigger_needs_command" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -s V -l version -d 'Print version'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -f -a "serve" -d 'Run the daemon: watch, index, serve the trigger (the default)'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -f -a "check" -d 'Check the settings and everything they name, without serving'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -f -a "status" -d 'Ask the running daemon how it is (its /healthz) and print a short summary'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -f -a "poll" -d 'Poll the running daemon\'s trigger as Azure Logic Apps does; one JSON line per file'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -f -a "consumers" -d 'List or delete a folder\'s named consumers (the positions kept for `consumer=NAME`)'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -f -a "openapi" -d 'Print the connector\'s OpenAPI (Swagger 2.0) definition for these settings'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -f -a "generate-assets" -d 'Write the shell completions and manual pages (for packaging)'
complete -c filetrigger -n "__fish_filetrigger_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand serve" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand serve" -s h -l help -d 'Print help'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand check" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand status" -l url -d 'Base URL of the daemon, e.g. http://127.0.0.1:8080 [default: server.public_url, else http(s)://server.listen]' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand status" -l user -d 'HTTP Basic credentials. A password cannot be recovered from the htpasswd file, so give it here or, better (not visible in `ps`), in the environment variable' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand status" -l api-key -d 'API key, sent in auth.api_key_header [default: the first key in auth.api_key_file, when this user can read it]' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand status" -l cacert -d 'PEM CA certificates to trust for https, besides the system\'s and server.tls.cert' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand status" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -l url -d 'Base URL of the daemon, e.g. http://127.0.0.1:8080 [default: server.public_url, else http(s)://server.listen]' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -l user -d 'HTTP Basic credentials. A password cannot be recovered from the htpasswd file, so give it here or, better (not visible in `ps`), in the environment variable' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -l api-key -d 'API key, sent in auth.api_key_header [default: the first key in auth.api_key_file, when this user can read it]' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -l cacert -d 'PEM CA certificates to trust for https, besides the system\'s and server.tls.cert' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -l since -d 'Start from this cursor (RFC 3339, e.g. 2026-11-24T00:00:00Z): files indexed after it' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -l follow -d 'Keep polling after a 202 (nothing new), until Ctrl-C'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -l content -d 'Print each file\'s content too (base64 in "content"), not only its properties'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand poll" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -l url -d 'Base URL of the daemon, e.g. http://127.0.0.1:8080 [default: server.public_url, else http(s)://server.listen]' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -l user -d 'HTTP Basic credentials. A password cannot be recovered from the htpasswd file, so give it here or, better (not visible in `ps`), in the environment variable' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -l api-key -d 'API key, sent in auth.api_key_header [default: the first key in auth.api_key_file, when this user can read it]' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -l cacert -d 'PEM CA certificates to trust for https, besides the system\'s and server.tls.cert' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -l folder -d 'The folder (`default` is `[watch]`\'s)' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -f -a "list" -d 'List the folder\'s consumers: name, position, files waiting'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -f -a "delete" -d 'Delete a consumer (forget its position)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and not __fish_seen_subcommand_from list delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and __fish_seen_subcommand_from list" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and __fish_seen_subcommand_from delete" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and __fish_seen_subcommand_from help" -f -a "list" -d 'List the folder\'s consumers: name, position, files waiting'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete a consumer (forget its position)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand consumers; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand openapi" -l url -d 'Base URL clients reach the daemon at, e.g. http://fileserver:8080 [default: server.public_url, else http(s)://server.listen]' -r
complete -c filetrigger -n "__fish_filetrigger_using_subcommand openapi" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand openapi" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand generate-assets" -l config -d 'TOML file with settings (see /usr/share/doc/filetrigger/default.toml or config/default.toml for every key); FILETRIGGER__SECTION__KEY variables override it' -r -F
complete -c filetrigger -n "__fish_filetrigger_using_subcommand generate-assets" -s h -l help -d 'Print help'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and not __fish_seen_subcommand_from serve check status poll consumers openapi generate-assets help" -f -a "serve" -d 'Run the daemon: watch, index, serve the trigger (the default)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and not __fish_seen_subcommand_from serve check status poll consumers openapi generate-assets help" -f -a "check" -d 'Check the settings and everything they name, without serving'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and not __fish_seen_subcommand_from serve check status poll consumers openapi generate-assets help" -f -a "status" -d 'Ask the running daemon how it is (its /healthz) and print a short summary'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and not __fish_seen_subcommand_from serve check status poll consumers openapi generate-assets help" -f -a "poll" -d 'Poll the running daemon\'s trigger as Azure Logic Apps does; one JSON line per file'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and not __fish_seen_subcommand_from serve check status poll consumers openapi generate-assets help" -f -a "consumers" -d 'List or delete a folder\'s named consumers (the positions kept for `consumer=NAME`)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and not __fish_seen_subcommand_from serve check status poll consumers openapi generate-assets help" -f -a "openapi" -d 'Print the connector\'s OpenAPI (Swagger 2.0) definition for these settings'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and not __fish_seen_subcommand_from serve check status poll consumers openapi generate-assets help" -f -a "generate-assets" -d 'Write the shell completions and manual pages (for packaging)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and not __fish_seen_subcommand_from serve check status poll consumers openapi generate-assets help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and __fish_seen_subcommand_from consumers" -f -a "list" -d 'List the folder\'s consumers: name, position, files waiting'
complete -c filetrigger -n "__fish_filetrigger_using_subcommand help; and __fish_seen_subcommand_from consumers" -f -a "delete" -d 'Delete a consumer (forget its position)'

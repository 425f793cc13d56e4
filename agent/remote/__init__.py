"""Remote management: signed config pushes with automatic rollback, and a few safe remote commands.

    operator: clinic-agent fleet sign/push/command --(Ed25519 envelope)--> broker
    agent:    config/set --> push.check_push (pure) --> state.StateStore + Agent.apply_config
                                                    --> confirm.commit_confirmed --> config/state
              cmd        --> commands.check_command (pure) --> poll_now | diagnostics | resend
                                                           --> cmd/result
    site:     clinic-agent config show-pushed | diff | use-local  (the technician keeps control)

``envelope`` is the wire format and signatures, ``checks`` the checks both share, ``overlay`` the
merge of an overlay push onto a site's config, ``presign`` what the operator side checks before
signing, ``service`` the glue the daemon calls. See docs/remote-management.md.
"""

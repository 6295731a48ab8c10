# shellcheck shell=sh
# The users-file rules of src/credentials.ts, in POSIX shell: the CLI applies them to --users-file, the
# runtime-credentials entrypoint to the users it is given. Their limits and words (MAX_*, MIN_*, PROBLEM_*)
# come from values.sh, written from the same constants. Byte-exact under LC_ALL=C: characters are counted
# as UTF-8 lead bytes.
#   credential_problem NAME PASSWORD   prints the problem with one user, or nothing
#   users_file_problem FILE            prints " line N: problem" (": problem" for the whole file), or nothing:
#                                      the words after the file name in the CLI's message
#   users_file_each FILE COMMAND       runs COMMAND NAME PASSWORD for every user of a valid file
LC_ALL=C
export LC_ALL

# Characters, not bytes: UTF-8 continuation bytes (0x80-0xBF) do not start a character.
credential_characters() { printf '%s' "$1" | tr -d '\200-\277' | wc -c; }

# A password problem said of one user ("password for 'NAME' is ..."); the password itself never appears.
credential_for_user() { printf '%s\n' "${2%%password*}password for '$1'${2#*password}"; }

credential_problem() {
  case "$1" in '') printf '%s\n' "$PROBLEM_NAME_EMPTY"; return ;; esac
  case "$1" in *[[:cntrl:]]*) printf '%s\n' "$PROBLEM_NAME_CONTROL"; return ;; esac
  case "$1" in *' '*) printf '%s\n' "$PROBLEM_NAME_SPACE"; return ;; esac
  case "$1" in *[!!-~]*) printf '%s\n' "$PROBLEM_NAME_NOT_ASCII"; return ;; esac
  case "$1" in *@*) printf '%s\n' "$PROBLEM_NAME_AT"; return ;; esac
  [ "${#1}" -le "$MAX_NAME_CHARACTERS" ] || { printf '%s\n' "$PROBLEM_NAME_LONG"; return; }
  case "$2" in '') credential_for_user "$1" "$PROBLEM_PASSWORD_EMPTY"; return ;; esac
  if [ "$(credential_characters "$2")" -lt "$MIN_PASSWORD_CHARACTERS" ]; then
    credential_for_user "$1" "$PROBLEM_PASSWORD_SHORT"; return
  fi
  if [ "$(printf '%s' "$2" | wc -c)" -gt "$MAX_PASSWORD_BYTES" ]; then
    credential_for_user "$1" "$PROBLEM_PASSWORD_LONG"; return
  fi
  case "$2" in *[[:cntrl:]]*) credential_for_user "$1" "$PROBLEM_PASSWORD_CONTROL"; return ;; esac
  # C1 controls (U+0080-U+009F) are 0xC2 0x80-0x9F in UTF-8.
  if printf '%s' "$2" | grep -q "$(printf '\302[\200-\237]')"; then
    credential_for_user "$1" "$PROBLEM_PASSWORD_CONTROL"
  fi
}

# Calls "$2 LINE-NUMBER LINE" for every line that is not blank or a comment; stops at the first failure.
# NUL bytes become \001: the shell cannot hold them, and either is a control character to the rules.
users_file_lines() {
  credential_line_number=0
  while IFS= read -r credential_line || [ -n "$credential_line" ]; do
    credential_line_number=$((credential_line_number + 1))
    [ "$credential_line_number" -ne 1 ] || credential_line=${credential_line#"$(printf '\357\273\277')"}
    credential_line=${credential_line%"$(printf '\r')"}
    if [ "$(printf '%s' "$credential_line" | wc -c)" -gt "$MAX_LINE_BYTES" ]; then
      echo " line $credential_line_number: $PROBLEM_LONG_LINE"; return 1
    fi
    case "$credential_line" in *[![:space:]]*) ;; *) continue ;; esac
    case "${credential_line#"${credential_line%%[![:space:]]*}"}" in '#'*) continue ;; esac
    "$2" "$credential_line_number" "$credential_line" || return
  done <<CREDENTIAL_LINES
$(tr '\000' '\001' < "$1")
CREDENTIAL_LINES
}

credential_check_line() {
  case "$2" in *:*) ;; *) echo " line $1: $PROBLEM_NO_COLON"; return 1 ;; esac
  credential_found=$(credential_problem "${2%%:*}" "${2#*:}")
  if [ -n "$credential_found" ]; then echo " line $1: $credential_found"; return 1; fi
  case " $credential_names " in *" ${2%%:*} "*) echo " line $1: $PROBLEM_DUPLICATE '${2%%:*}'"; return 1 ;; esac
  credential_names="$credential_names ${2%%:*}"
  credential_count=$((credential_count + 1))
  if [ "$credential_count" -gt "$MAX_USERS" ]; then echo ": $PROBLEM_TOO_MANY_USERS"; return 1; fi
}

users_file_problem() {
  if ! iconv -f UTF-8 -t UTF-8 < "$1" > /dev/null 2>&1; then echo ": $PROBLEM_NOT_UTF8"; return; fi
  credential_names='' credential_count=0
  if users_file_lines "$1" credential_check_line && [ "$credential_count" -eq 0 ]; then
    echo ": $PROBLEM_NO_USERS"
  fi
}

credential_each_user() { "$credential_command" "${2%%:*}" "${2#*:}"; }

users_file_each() {
  credential_command=$2
  users_file_lines "$1" credential_each_user
}

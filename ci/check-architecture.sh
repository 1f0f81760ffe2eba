#!/usr/bin/env bash
# Checks the module boundaries of the C++ sources against ci/architecture.rules: a third-party
# header included outside its module, a libuv call, handle type or macro outside the loop
# helpers and the modules allowed to use them, a plan type used non-const (written) outside
# resolve. Comments and string literals do not count.
#
# Usage: ci/check-architecture.sh [--rules FILE] [SOURCE_DIR]
#   SOURCE_DIR  the tree to check (default: the repository holding this script)
#   --rules     the rules file (default: SOURCE_DIR/ci/architecture.rules)
# Prints each violation as `path:line: RULE: explanation`, then a last line
# `architecture: N files checked, M violations` (ci/test.sh records it as the stage's detail).
# Exit status: 0 no violation, 1 violations, 2 a bad rules file (an unknown directive, a bad
# regex, or a path that does not exist in the tree: a rule that points to nothing is stale).
#
# Rules (one per line, `#` starts a comment; paths are relative to SOURCE_DIR, a directory ends
# with `/`, anything else names a file):
#   scan DIR...                  the roots scanned (*.h, *.cc, *.hpp, *.cpp, recursively)
#   header PATTERN ALLOWED...    `#include <T>` / `#include "T"` with T matching PATTERN only in
#                                ALLOWED. PATTERN ending in `/` is a prefix (`toml++/`); else a
#                                glob over the whole T (`*` and `?` do not cross `/`).
#   symbol REGEX ALLOWED...      an identifier that is wholly matched by the Perl REGEX
#                                (case-sensitive) only in ALLOWED.
#   const-only TYPE ALLOWED...   outside ALLOWED every mention of TYPE (maybe `ns::`-qualified)
#                                is const: `const TYPE&`, `shared_ptr<const TYPE>`, `TYPE const&`,
#                                `const std::vector<TYPE>&` (a container that passes its const on;
#                                `const shared_ptr<TYPE>` does not and is a violation);
#                                a forward declaration `struct TYPE;` / `class TYPE;` and a
#                                scope `TYPE::member` are fine; `#include` lines do not count.
# Only perl-base is needed (no python, no compiler, no build).
set -uo pipefail

rules="" src=""
while (($#)); do
  case $1 in
    --rules)
      [[ $# -ge 2 ]] || { echo "ci/check-architecture.sh: --rules needs a file" >&2; exit 2; }
      rules=$2
      shift 2
      ;;
    -h | --help)
      sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"
      exit 0
      ;;
    -*) echo "usage: ci/check-architecture.sh [--rules FILE] [SOURCE_DIR]" >&2; exit 2 ;;
    *)
      [[ -z $src ]] || { echo "usage: ci/check-architecture.sh [--rules FILE] [SOURCE_DIR]" >&2; exit 2; }
      src=$1
      shift
      ;;
  esac
done
[[ -n $src ]] || src=$(dirname "$0")/..
[[ -d $src ]] || { echo "ci/check-architecture.sh: $src is not a directory" >&2; exit 2; }
src=$(realpath "$src")
[[ -n $rules ]] || rules=$src/ci/architecture.rules
[[ -f $rules ]] || { echo "ci/check-architecture.sh: no rules file at $rules" >&2; exit 2; }

command -v perl >/dev/null || { echo "ci/check-architecture.sh: perl is needed (Debian: perl-base)" >&2; exit 2; }
perl - "$src" "$rules" <<'PERL'
use strict;
use warnings;

my ($src, $rules_file) = @ARGV;
my $bad = 0;
# Messages name the rules file relative to the tree when it is inside it.
(my $rules_name = $rules_file) =~ s{^\Q$src\E/}{};
sub bad_rule { my ($n, $msg) = @_; print STDERR "$rules_name:$n: $msg\n"; $bad++; }

# --- the rules ---------------------------------------------------------------------------------
my (@scan, @rules);
open(my $rf, '<', $rules_file) or do { print STDERR "cannot read $rules_file: $!\n"; exit 2; };
my %known = (scan => 1, header => 1, symbol => 1, 'const-only' => 1);
my $n = 0;
while (my $line = <$rf>) {
  $n++;
  $line =~ s/#.*//;
  my @w = split ' ', $line;
  next unless @w;
  my $kind = shift @w;
  if (!$known{$kind}) {
    bad_rule($n, "unknown directive '$kind' (known: scan, header, symbol, const-only)");
    next;
  }
  # scan takes directories only: `runner` and `runner/` alike.
  if ($kind eq 'scan') { s{/*$}{/} for @w; }
  # Every path must exist: a rule naming a moved or deleted file would allow nothing, or the
  # wrong thing, without anyone noticing.
  my @paths = $kind eq 'scan' ? @w : @w[1 .. $#w];
  my $paths_ok = 1;
  for my $p (@paths) {
    if ($p =~ m{^/|(^|/)\.\.(/|$)}) {
      bad_rule($n, "'$p' must be a path inside the tree, relative to it");
      $paths_ok = 0;
    } elsif ($p =~ m{/$}) {
      if (!-d "$src/$p") { bad_rule($n, "stale rule: directory '$p' does not exist in $src"); $paths_ok = 0; }
    } elsif (-d "$src/$p") {
      bad_rule($n, "'$p' is a directory: write '$p/'");
      $paths_ok = 0;
    } elsif (!-f "$src/$p") {
      bad_rule($n, "stale rule: file '$p' does not exist in $src");
      $paths_ok = 0;
    }
  }
  if ($kind eq 'scan') {
    bad_rule($n, "scan needs at least one directory") unless @w;
    push @scan, @w if $paths_ok;
    next;
  }
  if (@w < 2) {
    bad_rule($n, "$kind needs a pattern and at least one allowed path");
    next;
  }
  my $what = $w[0];
  my $rule = { kind => $kind, what => $what, allowed => [ @paths ], line => $n };
  if ($kind eq 'header') {
    my $re;
    if ($what =~ m{/$}) {
      $re = '^' . quotemeta($what);
    } else {
      $re = join '', map { $_ eq '*' ? '[^/]*' : $_ eq '?' ? '[^/]' : quotemeta($_) } split /([*?])/, $what;
      $re = "^$re\$";
    }
    $rule->{re} = qr/$re/;
  } elsif ($kind eq 'symbol') {
    my $re = eval { qr/(?<![\w])(?:$what)(?![\w])/ };
    if (!$re) { bad_rule($n, "bad regex '$what': $@"); next; }
    $rule->{re} = $re;
  } else {
    if ($what !~ /^[A-Za-z_]\w*$/) { bad_rule($n, "const-only needs a bare type name, not '$what'"); next; }
    $rule->{re} = qr/(?<![\w])\Q$what\E(?![\w])/;
  }
  push @rules, $rule if $paths_ok;
}
close $rf;
bad_rule($n, "no scan line: nothing to check") if !$bad && !@scan;
if ($bad) {
  print "architecture: the rules file $rules_name is invalid ($bad problems)\n";
  exit 2;
}

# --- the files ---------------------------------------------------------------------------------
my @files;
sub walk {
  my ($rel) = @_;
  opendir(my $d, "$src/$rel") or die "cannot read $src/$rel: $!\n";
  for my $e (sort grep { !/^\.\.?$/ } readdir $d) {
    my $p = "$rel$e";
    if (-d "$src/$p" && !-l "$src/$p") { walk("$p/"); }
    elsif ($e =~ /\.(h|cc|hpp|cpp)$/ && -f "$src/$p") { push @files, $p; }
  }
  closedir $d;
}
my %seen;
walk($_) for grep { !$seen{$_}++ } @scan;
my %uniq;
@files = grep { !$uniq{$_}++ } @files;

sub allowed_in {
  my ($file, $allowed) = @_;
  for my $a (@$allowed) {
    return 1 if $a =~ m{/$} ? index($file, $a) == 0 : $file eq $a;
  }
  return 0;
}
# Containers whose const reaches their elements (for const-only).
my $const_containers = 'vector|optional|array|deque|list|forward_list|set|multiset|unordered_set|pair|tuple|variant';
sub blank { my ($s) = @_; $s =~ tr/\n/ /c; return $s; }

# Comments and the insides of string and character literals become spaces of the same length
# (newlines kept), so offsets and line numbers of the code stay those of the file. The regex
# takes the leftmost match: a `//` inside a string is string, a quote inside a comment is comment.
my $lexer = qr{
    //(?:[^\n\\]|\\.)*                                  # line comment (with \ continuations)
  | /\*.*?\*/                                           # block comment
  | (?<![\w])(?:u8|u|U|L)?R"([^()\\\s"]{0,16})\(.*?\)\1"   # raw string
  | (?<![\w])(?:u8|u|U|L)?"(?:[^"\\\n]|\\.)*"           # string
  | (?<![\w])(?:u8|u|U|L)?'(?:[^'\\\n]|\\.)*'           # character (1'000 is a digit separator)
}sx;

my $violations = 0;
sub report {
  my ($file, $line, $rule, $msg) = @_;
  printf "%s:%d: %s %s: %s (rule at %s:%d)\n", $file, $line, $rule->{kind}, $rule->{what}, $msg,
    $rules_name, $rule->{line};
  $violations++;
}
sub allowed_text { return join(', ', @{ $_[0]{allowed} }); }

for my $file (@files) {
  open(my $fh, '<', "$src/$file") or die "cannot read $src/$file: $!\n";
  my $orig = do { local $/; <$fh> };
  close $fh;
  (my $code = $orig) =~ s/$lexer/blank($&)/ge;
  my @code_lines = split /\n/, $code, -1;
  my @orig_lines = split /\n/, $orig, -1;
  # Includes are headers' business only: the other rules do not look at them.
  (my $body = $code) =~ s/^([ \t]*#[ \t]*include\b.*)$/blank($1)/gme;
  my @body_lines = split /\n/, $body, -1;

  for my $rule (@rules) {
    next if allowed_in($file, $rule->{allowed});
    my $re = $rule->{re};
    if ($rule->{kind} eq 'header') {
      for my $i (0 .. $#code_lines) {
        # The target is read from the file: the lexer blanked a "quoted" one in the code.
        next unless $code_lines[$i] =~ /^\s*#\s*include\b/;
        next unless substr($orig_lines[$i], $+[0]) =~ /^\s*([<"])([^>"]*)[>"]/;
        my ($o, $target) = ($1, $2);
        next unless $target =~ $re;
        my $c = $o eq '<' ? '>' : '"';
        report($file, $i + 1, $rule, "$o$target$c is included outside " . allowed_text($rule));
      }
    } elsif ($rule->{kind} eq 'symbol') {
      for my $i (0 .. $#body_lines) {
        my @hits = $body_lines[$i] =~ /($re)/g;
        next unless @hits;
        my %once;
        @hits = grep { !$once{$_}++ } @hits;
        report($file, $i + 1, $rule, join(', ', @hits) . " used outside " . allowed_text($rule));
      }
    } else {
      my $type = $rule->{what};
      my $last = 0;
      while ($body =~ /$re/g) {
        my ($start, $end) = ($-[0], $+[0]);
        my $before = substr($body, $start > 300 ? $start - 300 : 0, $start > 300 ? 300 : $start);
        my $after = substr($body, $end, 100);
        $before =~ s/(?:(?:(?<![\w])(?!const(?![\w]))[A-Za-z_]\w*\s*)?::\s*)+\z//;  # its ns:: qualifiers
        next if $before =~ /(?<![\w])const\s+\z/;           # const TYPE, const ns::TYPE
        # const std::vector<TYPE>&: a container that passes its constness on to the plans it
        # holds (a smart pointer or a span does not: shared_ptr<const TYPE> is the way there).
        if ($after =~ /\A\s*[,>]/) {
          my $outer = $before;
          while ($outer =~ s/(?<![\w])(?:std\s*::\s*)?(?:$const_containers)\s*<\s*\z//) {
            $outer =~ s/(?:(?:(?<![\w])(?!const(?![\w]))[A-Za-z_]\w*\s*)?::\s*)+\z//;
            last if $outer =~ /(?<![\w])const\s+\z/;
          }
          next if $outer ne $before && $outer =~ /(?<![\w])const\s+\z/;
        }
        next if $after =~ /\A\s*const(?![\w])/;            # TYPE const
        next if $after =~ /\A\s*::/;                       # TYPE::member names a scope, no object
        next if $before =~ /(?<![\w])(?:struct|class)\s+\z/ && $after =~ /\A\s*;/;  # forward declaration
        my $line = (substr($body, 0, $start) =~ tr/\n//) + 1;
        next if $line == $last;                             # one report per line
        $last = $line;
        my $text = $body_lines[$line - 1];
        $text =~ s/^\s+|\s+$//g;
        $text =~ s/\s+/ /g;
        report($file, $line, $rule,
          "a plan is written after resolve: `$type` is used non-const (`$text`) outside " . allowed_text($rule));
      }
    }
  }
}
printf "architecture: %d files checked, %d violations\n", scalar @files, $violations;
exit($violations ? 1 : 0);
PERL

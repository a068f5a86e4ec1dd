//! Compiles a validated policy into one classic BPF program.
//!
//! Hand-written rather than seccompiler's backend because of what it emits: one program
//! per action, each a linear chain of every listed syscall. The default policy came out as
//! two programs of 1,468 and 537 instructions: the kernel spent ~0.9 ms translating and
//! JIT-compiling them for every sandbox, and every syscall of the build walked both
//! chains. Here the allowlist and the denylist become one program that finds the syscall
//! by binary search (about a dozen instructions for any call) and then checks its
//! argument conditions; the format of policy files is unchanged.
//!
//! The search is over runs of consecutive numbers that get the same answer, not over
//! single numbers: most of a policy's syscalls sit next to others with the same answer
//! (the default policy: 339 listed syscalls, 106 runs), and the kernel translates and
//! JIT-compiles every instruction for every sandbox, about 0.35 us each here.
//!
//! Layout: the ABI check; a search tree of `jge` nodes whose leaves are short chains of
//! `jge` (one per run boundary) with their return instructions next to them; then the
//! bodies of the syscalls that have argument conditions. Classic BPF jumps only forward, `jt`/`jf` at most 255
//! instructions; anything farther goes through `ja`, whose offset is 32 bits.
use std::collections::BTreeMap;

pub mod reference;

/// One classic BPF instruction (struct sock_filter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BpfInstruction {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// offsetof(struct seccomp_data, nr) and offsetof(struct seccomp_data, arch).
const SYSCALL_NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
/// EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE (linux/audit.h).
pub const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// x32 processes enter with AUDIT_ARCH_X86_64 and mark their syscall numbers with this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const DENY_OTHER_ABI: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

const fn statement(code: u16, k: u32) -> BpfInstruction {
    BpfInstruction {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> BpfInstruction {
    BpfInstruction { code, jt, jf, k }
}

/// The start of every program. An i386 syscall (int 0x80) or an x32 one fails with EPERM:
/// a build that runs a 32-bit tool sees a clear error rather than a bare SIGSYS, and
/// nothing in a policy can return KILL. x32 calls arrive as x86_64 with a marked number;
/// without this check they would reach the "unlisted" default with another errno. Leaves
/// the syscall number in the accumulator.
pub const ABI_CHECK: [BpfInstruction; 6] = [
    statement(LOAD_WORD, ARCH_OFFSET),
    jump(JEQ, AUDIT_ARCH_X86_64, 1, 0),
    statement(RETURN, DENY_OTHER_ABI),
    statement(LOAD_WORD, SYSCALL_NR_OFFSET),
    jump(JGE, X32_SYSCALL_BIT, 0, 1),
    statement(RETURN, DENY_OTHER_ABI),
];

/// Which argument word a condition compares, how, and with what. Values already split
/// into what one 32-bit compare needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Condition {
    pub index: u8,
    pub qword: bool,
    pub op: Op,
    pub value: u64,
}

/// As a policy file spells it (`"eq"`, ..., `{"masked_eq": MASK}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq(u64),
}

/// The rules of one syscall: alternatives (each an and-ed list of conditions; an empty
/// list matches every call) that deny, and that allow.
#[derive(Default)]
pub struct SyscallRules {
    pub deny: Vec<Vec<Condition>>,
    pub allow: Vec<Vec<Condition>>,
}

/// What the program returns.
#[derive(Clone, Copy)]
pub struct Actions {
    /// A call the denylist matches.
    pub denied: u32,
    /// A call neither list matches.
    pub unlisted: u32,
}

pub(crate) const LOAD_WORD: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
pub(crate) const AND: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
pub(crate) const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
pub(crate) const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
pub(crate) const JGT: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
pub(crate) const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
pub const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// offsetof(struct seccomp_data, args): six u64, little-endian.
pub(crate) const ARGS_OFFSET: u32 = 16;
/// A search-tree leaf tells apart at most this many runs, one compare each.
const LEAF_SIZE: usize = 8;

/// The program for `rules` (syscall number → rules), starting with [`ABI_CHECK`].
pub fn compile(
    rules: &BTreeMap<u32, SyscallRules>,
    actions: Actions,
) -> Result<Vec<BpfInstruction>, String> {
    let mut program = Assembler::default();
    for instruction in ABI_CHECK {
        program.emit(Item::Plain(instruction));
    }
    let mut bodies = Vec::new();
    program.search(&runs(rules, actions), &mut bodies);
    for (label, number) in bodies {
        program.place(label);
        program.body(&rules[&number], actions)?;
    }
    let instructions = program.resolve()?;
    if instructions.len() > libc::BPF_MAXINSNS as usize {
        return Err(format!(
            "{} BPF instructions, the kernel takes at most {}",
            instructions.len(),
            libc::BPF_MAXINSNS
        ));
    }
    Ok(instructions)
}

/// What the program answers for a syscall number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// This action (allow, the denylist's, or the unlisted one), whatever the arguments.
    Return(u32),
    /// Decided by the syscall's argument conditions, in a body of its own.
    Conditions(u32),
}

/// The numbers from 0 up as runs of equal answers: (first number of the run, answer),
/// ascending; the last run goes on to the largest number. Syscalls with conditions are
/// runs of one.
fn runs(rules: &BTreeMap<u32, SyscallRules>, actions: Actions) -> Vec<(u32, Answer)> {
    let answer = |number: u32, syscall: &SyscallRules| {
        if syscall.deny.iter().any(Vec::is_empty) {
            Answer::Return(actions.denied)
        } else if syscall.deny.is_empty() && syscall.allow.iter().any(Vec::is_empty) {
            Answer::Return(libc::SECCOMP_RET_ALLOW)
        } else {
            Answer::Conditions(number)
        }
    };
    let unlisted = Answer::Return(actions.unlisted);
    let mut runs: Vec<(u32, Answer)> = vec![(0, unlisted)];
    // Only number 0 can start where a run already starts (the initial unlisted one).
    let mut push = |first: u32, answer: Answer| match runs.last_mut() {
        Some(last) if last.0 == first => last.1 = answer,
        Some(last) if last.1 == answer => {}
        _ => runs.push((first, answer)),
    };
    for (&number, syscall) in rules {
        push(number, answer(number, syscall));
        if let Some(next) = number.checked_add(1) {
            if !rules.contains_key(&next) {
                push(next, unlisted);
            }
        }
    }
    runs
}

type Label = usize;

/// Where a conditional jump goes.
#[derive(Clone, Copy)]
enum Target {
    /// The next instruction.
    Next,
    Label(Label),
}

enum Item {
    Plain(BpfInstruction),
    Jump {
        code: u16,
        k: u32,
        jt: Target,
        jf: Target,
    },
    Always(Label),
    Place(Label),
}

#[derive(Default)]
struct Assembler {
    items: Vec<Item>,
    labels: usize,
}

impl Assembler {
    fn emit(&mut self, item: Item) {
        self.items.push(item);
    }

    fn label(&mut self) -> Label {
        self.labels += 1;
        self.labels - 1
    }

    fn place(&mut self, label: Label) {
        self.emit(Item::Place(label));
    }

    fn statement(&mut self, code: u16, k: u32) {
        self.emit(Item::Plain(BpfInstruction {
            code,
            jt: 0,
            jf: 0,
            k,
        }));
    }

    fn jump(&mut self, code: u16, k: u32, jt: Target, jf: Target) {
        self.emit(Item::Jump { code, k, jt, jf });
    }

    /// Dispatches on the syscall number (in the accumulator) among `runs` (see [`runs`]),
    /// the first of which starts at or below it. Syscalls with argument conditions get a
    /// label in `bodies`, to be placed later.
    fn search(&mut self, runs: &[(u32, Answer)], bodies: &mut Vec<(Label, u32)>) {
        if runs.len() > LEAF_SIZE {
            let (low, high) = runs.split_at(runs.len() / 2);
            let high_half = self.label();
            let low_half = self.label();
            self.jump(JGE, high[0].0, Target::Next, Target::Label(low_half));
            self.emit(Item::Always(high_half));
            self.place(low_half);
            self.search(low, bodies);
            self.place(high_half);
            self.search(high, bodies);
            return;
        }
        // A leaf: a compare per boundary, then the answer of the last run, then the
        // returns and trampolines the compares jump to, all within reach of a short jump.
        let mut returns: Vec<(u32, Label)> = Vec::new();
        let mut trampolines = Vec::new();
        let mut target = |answer: Answer, this: &mut Self| match answer {
            Answer::Return(action) => match returns.iter().find(|(known, _)| *known == action) {
                Some(&(_, label)) => label,
                None => {
                    let label = this.label();
                    returns.push((action, label));
                    label
                }
            },
            Answer::Conditions(number) => {
                let (trampoline, body) = (this.label(), this.label());
                trampolines.push((trampoline, body));
                bodies.push((body, number));
                trampoline
            }
        };
        for pair in runs.windows(2) {
            let below_next = target(pair[0].1, self);
            self.jump(JGE, pair[1].0, Target::Next, Target::Label(below_next));
        }
        match runs[runs.len() - 1].1 {
            Answer::Return(action) => self.statement(RETURN, action),
            Answer::Conditions(number) => {
                let body = self.label();
                bodies.push((body, number));
                self.emit(Item::Always(body));
            }
        }
        for (action, label) in returns {
            self.place(label);
            self.statement(RETURN, action);
        }
        for (trampoline, body) in trampolines {
            self.place(trampoline);
            self.emit(Item::Always(body));
        }
    }

    /// A syscall's alternatives in order, denials first: the first that matches returns.
    fn body(&mut self, syscall: &SyscallRules, actions: Actions) -> Result<(), String> {
        let alternatives = syscall
            .deny
            .iter()
            .map(|conditions| (conditions, actions.denied))
            .chain(
                syscall
                    .allow
                    .iter()
                    .map(|conditions| (conditions, libc::SECCOMP_RET_ALLOW)),
            );
        for (conditions, action) in alternatives {
            if conditions.is_empty() {
                self.statement(RETURN, action);
                return Ok(());
            }
            let next_alternative = self.label();
            for condition in conditions {
                self.condition(condition, next_alternative)?;
            }
            self.statement(RETURN, action);
            self.place(next_alternative);
        }
        self.statement(RETURN, actions.unlisted);
        Ok(())
    }

    /// Falls through when `condition` holds, jumps to `fail` when it does not.
    fn condition(&mut self, condition: &Condition, fail: Label) -> Result<(), String> {
        let low_word = ARGS_OFFSET + 8 * u32::from(condition.index);
        let high_word = low_word + 4;
        let fail = Target::Label(fail);
        let next = Target::Next;
        let split = |value: u64| ((value >> 32) as u32, value as u32);
        if !condition.qword {
            let fits = |value: u64| {
                u32::try_from(value).map_err(|_| {
                    format!("{value} does not fit the 32-bit argument it is compared with")
                })
            };
            let value = fits(condition.value)?;
            self.statement(LOAD_WORD, low_word);
            match condition.op {
                Op::Eq => self.jump(JEQ, value, next, fail),
                Op::Ne => self.jump(JEQ, value, fail, next),
                Op::Lt => self.jump(JGE, value, fail, next),
                Op::Le => self.jump(JGT, value, fail, next),
                Op::Gt => self.jump(JGT, value, next, fail),
                Op::Ge => self.jump(JGE, value, next, fail),
                Op::MaskedEq(mask) => {
                    self.statement(AND, fits(mask)?);
                    self.jump(JEQ, value, next, fail);
                }
            }
            return Ok(());
        }
        // 64-bit comparisons: decide on the high words, then on the low ones if equal.
        let holds = self.label();
        let (high, low) = split(condition.value);
        let pass = Target::Label(holds);
        self.statement(LOAD_WORD, high_word);
        match condition.op {
            Op::Eq => {
                self.jump(JEQ, high, next, fail);
                self.statement(LOAD_WORD, low_word);
                self.jump(JEQ, low, next, fail);
            }
            Op::Ne => {
                self.jump(JEQ, high, next, pass);
                self.statement(LOAD_WORD, low_word);
                self.jump(JEQ, low, fail, next);
            }
            Op::Gt | Op::Ge => {
                self.jump(JGT, high, pass, next);
                self.jump(JEQ, high, next, fail);
                self.statement(LOAD_WORD, low_word);
                let code = if condition.op == Op::Gt { JGT } else { JGE };
                self.jump(code, low, next, fail);
            }
            Op::Lt | Op::Le => {
                self.jump(JGT, high, fail, next);
                self.jump(JEQ, high, next, pass);
                self.statement(LOAD_WORD, low_word);
                let code = if condition.op == Op::Lt { JGE } else { JGT };
                self.jump(code, low, fail, next);
            }
            Op::MaskedEq(mask) => {
                let (mask_high, mask_low) = split(mask);
                self.statement(AND, mask_high);
                self.jump(JEQ, high, next, fail);
                self.statement(LOAD_WORD, low_word);
                self.statement(AND, mask_low);
                self.jump(JEQ, low, next, fail);
            }
        }
        self.place(holds);
        Ok(())
    }

    /// Lays the program out and turns labels into relative offsets.
    fn resolve(self) -> Result<Vec<BpfInstruction>, String> {
        let mut positions = vec![usize::MAX; self.labels];
        let mut position = 0;
        for item in &self.items {
            match item {
                Item::Place(label) => positions[*label] = position,
                _ => position += 1,
            }
        }
        let mut program = Vec::with_capacity(position);
        for item in self.items {
            let here = program.len();
            // Offsets count from the instruction after this one.
            let offset = |target: Target| -> Result<usize, String> {
                match target {
                    Target::Next => Ok(0),
                    Target::Label(label) => positions[label]
                        .checked_sub(here + 1)
                        .ok_or_else(|| "a jump backwards".to_string()),
                }
            };
            let short = |target: Target| -> Result<u8, String> {
                u8::try_from(offset(target)?)
                    .map_err(|_| "a condition block longer than 255 instructions".to_string())
            };
            program.push(match item {
                Item::Place(_) => continue,
                Item::Plain(instruction) => instruction,
                Item::Jump { code, k, jt, jf } => BpfInstruction {
                    code,
                    jt: short(jt)?,
                    jf: short(jf)?,
                    k,
                },
                Item::Always(label) => BpfInstruction {
                    code: JA,
                    jt: 0,
                    jf: 0,
                    k: u32::try_from(offset(Target::Label(label))?)
                        .map_err(|_| "a program too long to jump across".to_string())?,
                },
            });
        }
        Ok(program)
    }
}

#[cfg(test)]
mod tests {
    use super::reference::run;
    use super::*;

    const X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    const DENIED: u32 = libc::SECCOMP_RET_ERRNO | 1;
    const UNLISTED: u32 = libc::SECCOMP_RET_ERRNO | 38;
    const ACTIONS: Actions = Actions {
        denied: DENIED,
        unlisted: UNLISTED,
    };

    fn holds(condition: &Condition, arg: u64) -> bool {
        let (arg, value) = if condition.qword {
            (arg, condition.value)
        } else {
            (arg & 0xffff_ffff, condition.value)
        };
        match condition.op {
            Op::Eq => arg == value,
            Op::Ne => arg != value,
            Op::Lt => arg < value,
            Op::Le => arg <= value,
            Op::Gt => arg > value,
            Op::Ge => arg >= value,
            Op::MaskedEq(mask) => arg & mask == value,
        }
    }

    #[test]
    fn every_comparison_matches_exactly_the_arguments_it_should() {
        let edges = [
            0u64,
            1,
            0x7fff_ffff,
            0xffff_ffff,
            0x1_0000_0000,
            0x1_0000_0001,
            0x2_0000_0000,
            u64::MAX - 1,
            u64::MAX,
        ];
        let ops = [
            Op::Eq,
            Op::Ne,
            Op::Lt,
            Op::Le,
            Op::Gt,
            Op::Ge,
            Op::MaskedEq(0xff),
            Op::MaskedEq(0x1_0000_00ff),
        ];
        for qword in [false, true] {
            for op in ops {
                for value in edges {
                    let condition = Condition {
                        index: 2,
                        qword,
                        op,
                        value,
                    };
                    let fits = |v: u64| qword || v <= u64::from(u32::MAX);
                    let mask_fits = match op {
                        Op::MaskedEq(mask) => fits(mask),
                        _ => true,
                    };
                    if !fits(value) || !mask_fits {
                        continue;
                    }
                    let mut rules = BTreeMap::new();
                    rules.insert(
                        16,
                        SyscallRules {
                            deny: vec![],
                            allow: vec![vec![condition]],
                        },
                    );
                    let program = compile(&rules, ACTIONS).unwrap();
                    for arg in edges.iter().flat_map(|&e| [e, e ^ 0xffff_ffff_0000_0000]) {
                        let mut args = [0; 6];
                        args[2] = arg;
                        let expected = if holds(&condition, arg) {
                            libc::SECCOMP_RET_ALLOW
                        } else {
                            UNLISTED
                        };
                        assert_eq!(
                            run(&program, X86_64, 16, args).0,
                            expected,
                            "{condition:?} on {arg:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_value_wider_than_a_dword_is_refused() {
        let condition = Condition {
            index: 1,
            qword: false,
            op: Op::Eq,
            value: 0x1_0000_5412,
        };
        let mut rules = BTreeMap::new();
        rules.insert(
            16,
            SyscallRules {
                deny: vec![vec![condition]],
                allow: vec![vec![]],
            },
        );
        let err = compile(&rules, ACTIONS).unwrap_err();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn denials_win_and_alternatives_are_tried_in_turn() {
        let equals = |index, value| Condition {
            index,
            qword: false,
            op: Op::Eq,
            value,
        };
        let mut rules = BTreeMap::new();
        rules.insert(
            16,
            SyscallRules {
                deny: vec![vec![equals(1, 0x5412)]],
                allow: vec![vec![equals(0, 1), equals(1, 7)], vec![equals(0, 2)]],
            },
        );
        rules.insert(
            0,
            SyscallRules {
                deny: vec![],
                allow: vec![vec![]],
            },
        );
        rules.insert(
            1,
            SyscallRules {
                deny: vec![vec![]],
                allow: vec![],
            },
        );
        let program = compile(&rules, ACTIONS).unwrap();
        let call = |number, a0, a1| run(&program, X86_64, number, [a0, a1, 0, 0, 0, 0]).0;
        assert_eq!(call(16, 1, 0x5412), DENIED);
        assert_eq!(call(16, 1, 7), libc::SECCOMP_RET_ALLOW);
        assert_eq!(call(16, 2, 9), libc::SECCOMP_RET_ALLOW);
        assert_eq!(call(16, 1, 8), UNLISTED);
        assert_eq!(call(0, 0, 0), libc::SECCOMP_RET_ALLOW);
        assert_eq!(call(1, 0, 0), DENIED);
        assert_eq!(call(2, 0, 0), UNLISTED);
        assert_eq!(
            call(0x4000_0000, 0, 0),
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
            "x32"
        );
        assert_eq!(
            run(&program, 0x4000_0003, 0, [0; 6]).0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
            "i386"
        );
    }

    /// Any policy, any call: the compiled program answers what the rules say, read
    /// directly (a denial wins, then any allowing alternative whose conditions all hold,
    /// else the unlisted answer).
    mod agrees_with_the_rules {
        use proptest::prelude::*;

        use super::*;

        fn condition() -> impl Strategy<Value = Condition> {
            let op = prop_oneof![
                Just(Op::Eq),
                Just(Op::Ne),
                Just(Op::Lt),
                Just(Op::Le),
                Just(Op::Gt),
                Just(Op::Ge),
                any::<u32>().prop_map(|mask| Op::MaskedEq(u64::from(mask))),
                any::<u64>().prop_map(Op::MaskedEq),
            ];
            (0u8..6, any::<bool>(), op, any::<u64>()).prop_map(|(index, qword, op, value)| {
                let fit = |v: u64| if qword { v } else { v & 0xffff_ffff };
                let op = match op {
                    Op::MaskedEq(mask) => Op::MaskedEq(fit(mask)),
                    other => other,
                };
                let value = match op {
                    Op::MaskedEq(mask) => fit(value) & mask,
                    _ => fit(value),
                };
                Condition {
                    index,
                    qword,
                    op,
                    value,
                }
            })
        }

        /// Per syscall: the denying alternatives, then the allowing ones.
        type Policy = BTreeMap<u32, (Vec<Vec<Condition>>, Vec<Vec<Condition>>)>;

        fn alternatives() -> impl Strategy<Value = Vec<Vec<Condition>>> {
            proptest::collection::vec(proptest::collection::vec(condition(), 0..3), 0..3)
        }

        /// Syscall numbers in clusters, as real policies have them, and a few far ones.
        fn number() -> impl Strategy<Value = u32> {
            prop_oneof![0u32..40, 200u32..240, 420u32..460, Just(0x3fff_ffff)]
        }

        fn policy() -> impl Strategy<Value = Policy> {
            proptest::collection::btree_map(number(), (alternatives(), alternatives()), 0..24)
        }

        fn holds_all(conditions: &[Condition], args: &[u64; 6]) -> bool {
            conditions
                .iter()
                .all(|condition| holds(condition, args[usize::from(condition.index)]))
        }

        /// Arguments that sit on and beside the values the policy compares with, and
        /// arbitrary ones.
        fn arguments(policy: &Policy, seeds: &[u64]) -> [u64; 6] {
            let values: Vec<u64> = policy
                .values()
                .flat_map(|(deny, allow)| deny.iter().chain(allow))
                .flatten()
                .map(|condition| condition.value)
                .collect();
            let mut args = [0; 6];
            for (index, seed) in seeds.iter().enumerate().take(6) {
                args[index] = match (seed % 4, values.is_empty()) {
                    (0, false) => values[(seed / 4) as usize % values.len()],
                    (1, false) => values[(seed / 4) as usize % values.len()].wrapping_add(1),
                    (2, false) => values[(seed / 4) as usize % values.len()].wrapping_sub(1),
                    _ => seed.rotate_left(17),
                };
            }
            args
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn for_random_policies_and_calls(
                policy in policy(),
                calls in proptest::collection::vec((number(), proptest::collection::vec(any::<u64>(), 6)), 1..40),
            ) {
                let rules: BTreeMap<u32, SyscallRules> = policy
                    .iter()
                    .map(|(number, (deny, allow))| {
                        (*number, SyscallRules { deny: deny.clone(), allow: allow.clone() })
                    })
                    .collect();
                let program = compile(&rules, ACTIONS).unwrap();
                for (number, seeds) in calls {
                    let args = arguments(&policy, &seeds);
                    let expected = match policy.get(&number) {
                        Some((deny, _)) if deny.iter().any(|alt| holds_all(alt, &args)) => DENIED,
                        Some((_, allow)) if allow.iter().any(|alt| holds_all(alt, &args)) => {
                            libc::SECCOMP_RET_ALLOW
                        }
                        _ => UNLISTED,
                    };
                    prop_assert_eq!(
                        run(&program, X86_64, number, args).0,
                        expected,
                        "syscall {} args {:x?}",
                        number,
                        args
                    );
                }
            }
        }
    }
}

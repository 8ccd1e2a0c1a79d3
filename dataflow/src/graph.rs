//! The differential-dataflow graph: killmails in, battle reports out, in five stages (one
//! function each, so `benches/engine` can measure the graph cut after any of them):
//!
//! 1. Each killmail becomes a [`LinkRecord`] placed in its cells (`cell.rs`).
//! 2. A `reduce` per cell runs [`cluster_cell`]: sequential union-find inside the cell, giving
//!    every killmail a primary membership in a local component (a [`Node`]) and bridging guests
//!    a secondary one.
//! 3. Secondary memberships joined with primary ones are edges between nodes of different cells;
//!    label propagation over these (few) edges gives each connected node the smallest label of
//!    its component. Nodes without edges keep their own label. A primary membership carries its
//!    killmail, so the label reaches the killmail itself, not its id.
//! 4. Killmails grouped by label are battles. A `reduce` per (battle, slice of time) summarizes
//!    the battle's killmails of that slice as a [`Piece`].
//! 5. A `reduce` per battle finishes its report from its pieces, so a step re-reads only the
//!    slices it touched (`summarize.rs`).
//!
//! Timestamps are ingest epochs (`u64`), not killmail times: a late killmail is an ordinary
//! update of the current epoch, so the output for a set of killmails does not depend on the order
//! or batching in which they arrived.

use std::sync::Arc;

use differential_dataflow::algorithms::graphs::propagate::propagate;
use differential_dataflow::VecCollection;
use serde::{Deserialize, Serialize};

use crate::cell::{cells_of, cluster_cell, Cell, NearbyRegions, Node, Role};
use crate::killmail::{Killmail, KillmailId};
use crate::link::LinkRecord;
use crate::report::BattleReport;
use crate::shared::Shared;
use crate::summarize::{piece_of, summarize_pieces, Piece};
use crate::universe::Universe;
use crate::EngineConfig;

/// The dataflow's timestamp: the ingest epoch.
pub type Epoch = u64;

/// A battle's label: the (time, id) of the first killmail of its smallest local component.
pub type Label = (i64, KillmailId);

/// A killmail's link record in one of its cells, with its role there.
pub type Placed = (Cell, (Role, Shared<Linked>));

/// What a cell holds of a killmail: its link record, and the killmail itself, which its primary
/// membership carries on to the battle it is labelled with. Ordered by the link record, which
/// names the killmail.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Linked {
    pub link: LinkRecord,
    pub killmail: Shared<Killmail>,
}

/// A killmail with its id beside it: arrangements order these by the id they hold, without
/// reading the killmail behind the pointer (a cache miss per comparison).
pub type Carried = (KillmailId, Shared<Killmail>);

/// A killmail's membership in a local component as the graph carries it: a primary one with the
/// killmail (stage 3 labels it), a secondary one by id (it only makes an edge).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Member {
    Primary(Node, Carried),
    Secondary(KillmailId, Node),
}

/// Builds the clustering graph over a collection of killmails: its stages in order.
///
/// Killmails, link records, summary pieces and reports travel as [`Shared`]s: arrangements clone
/// and compare their contents as they merge batches, and a killmail with hundreds of attackers
/// or a big battle's report is expensive to clone or to compare with itself.
pub fn battles<'scope>(
    killmails: VecCollection<'scope, Epoch, Shared<Killmail>, isize>,
    config: Arc<EngineConfig>,
) -> VecCollection<'scope, Epoch, Shared<BattleReport>, isize> {
    let placed = place_killmails(killmails, &config);
    let memberships = cluster_cells(placed, &config);
    let labelled = label_killmails(memberships);
    let pieces = battle_pieces(labelled);
    battle_reports(pieces, config.min_linked_killmails)
}

/// Stage 1: each killmail's [`LinkRecord`] in every cell it appears in, with its role there.
pub fn place_killmails<'scope>(
    killmails: VecCollection<'scope, Epoch, Shared<Killmail>, isize>,
    config: &EngineConfig,
) -> VecCollection<'scope, Epoch, Placed, isize> {
    let universe = Universe::embedded();
    let width = config.rule.bucket_width();
    let nearby_regions = Arc::new(NearbyRegions::new(universe, config.rule.gate_jumps));
    killmails.flat_map(move |km| {
        let link = LinkRecord::of(&km);
        let cells: Vec<(Cell, Role)> = cells_of(&link, width, &nearby_regions).collect();
        let linked = Shared::new(Linked { link, killmail: km });
        cells
            .into_iter()
            .map(|(cell, role)| (cell, (role, linked.clone())))
            .collect::<Vec<_>>()
    })
}

/// Stage 2: union-find inside each cell ([`cluster_cell`]), giving every killmail its
/// memberships in local components.
pub fn cluster_cells<'scope>(
    placed: VecCollection<'scope, Epoch, Placed, isize>,
    config: &Arc<EngineConfig>,
) -> VecCollection<'scope, Epoch, Member, isize> {
    let universe = Universe::embedded();
    let config = config.clone();
    placed
        .reduce_named("ClusterCell", move |cell, members, out| {
            let members: Vec<(&Role, &Linked)> = members
                .iter()
                .filter(|(_, diff)| *diff > 0)
                .map(|((role, linked), _)| (role, &**linked))
                .collect();
            let links: Vec<(&Role, &LinkRecord)> =
                members.iter().map(|(role, l)| (*role, &l.link)).collect();
            for (m, at) in cluster_cell(*cell, &links, &config.rule, universe) {
                let member = match m.primary {
                    true => Member::Primary(m.node, (m.killmail, members[at].1.killmail.clone())),
                    false => Member::Secondary(m.killmail, m.node),
                };
                out.push((member, 1isize));
            }
        })
        .map(|(_cell, m)| m)
}

/// Stage 3: every killmail with its battle label. Secondary memberships joined with primary
/// ones are edges between local components of different cells; label propagation over them
/// gives each connected component the smallest label of its nodes, and nodes without edges keep
/// their own.
pub fn label_killmails<'scope>(
    memberships: VecCollection<'scope, Epoch, Member, isize>,
) -> VecCollection<'scope, Epoch, (Label, Carried), isize> {
    let node_km = memberships.clone().flat_map(|m| match m {
        Member::Primary(node, km) => Some((node, km)),
        Member::Secondary(..) => None,
    });
    let primary = node_km.clone().map(|(node, (id, _km))| (id, node));
    let secondary = memberships.flat_map(|m| match m {
        Member::Secondary(km, node) => Some((km, node)),
        Member::Primary(..) => None,
    });

    let edges = secondary
        .join_map(primary, |_km, guest: &Node, home: &Node| (*home, *guest))
        .filter(|(a, b)| a != b)
        .flat_map(|(a, b)| [(a, b), (b, a)])
        .distinct();
    let seeds = edges.clone().map(|(a, _)| (a, a.label())).distinct();
    let labels = propagate(edges, seeds);

    // Arranged once for both: the nodes that propagation labelled, and all of them.
    let node_km = node_km.arrange_by_key();
    let connected = node_km
        .clone()
        .join_core(labels.arrange_by_key(), |node, km, label| {
            Some((*node, *label, km.clone()))
        });
    let lonely = node_km
        .as_collection(|node, km| (node.label(), km.clone()))
        .concat(
            connected
                .clone()
                .map(|(node, _label, km)| (node.label(), km))
                .negate(),
        );
    connected
        .map(|(_node, label, km)| (label, km))
        .concat(lonely)
}

/// Stage 4: each battle's killmails summarized per slice of time ([`Piece`]), so a step
/// re-reads only the slices it touched.
pub fn battle_pieces<'scope>(
    labelled: VecCollection<'scope, Epoch, (Label, Carried), isize>,
) -> VecCollection<'scope, Epoch, (Label, Shared<Piece>), isize> {
    labelled
        .map(|(label, (id, km))| ((label, piece_of(&km)), (id, km)))
        .reduce_named("BattlePiece", |_key, kms, out| {
            let list: Vec<&Killmail> = kms
                .iter()
                .filter(|(_, diff)| *diff > 0)
                .map(|((_, km), _)| &**km)
                .collect();
            if !list.is_empty() {
                out.push((Shared::new(Piece::of(&list)), 1isize));
            }
        })
        .map(|((label, _piece), piece)| (label, piece))
}

/// Stage 5: each battle's report finished from its pieces; components of fewer than
/// `min_linked` linked killmails are not battles.
pub fn battle_reports<'scope>(
    pieces: VecCollection<'scope, Epoch, (Label, Shared<Piece>), isize>,
    min_linked: usize,
) -> VecCollection<'scope, Epoch, Shared<BattleReport>, isize> {
    pieces
        .reduce_named("Battle", move |_label, pieces, out| {
            let list: Vec<&Piece> = pieces
                .iter()
                .filter(|(_, diff)| *diff > 0)
                .map(|(piece, _)| &***piece)
                .collect();
            let enough = list.iter().map(|p| p.linkers).sum::<usize>() >= min_linked;
            if enough && !list.is_empty() {
                out.push((Shared::new(summarize_pieces(&list)), 1isize));
            }
        })
        .map(|(_label, report)| report)
}

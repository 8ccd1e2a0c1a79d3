//! The response examples of the Battle Service spec (battle-service-spec.md, "API
//! Endpoints"), copied verbatim: the shapes responses are checked against.

pub const LIST: &str = r#"{
  "battles": [
    {
      "id": "uuid",
      "startedAt": "2025-11-25T09:00:00Z",
      "endedAt": "2025-11-25T10:30:00Z",
      "duration": 5400,
      "primarySystem": { "id": 30000142, "name": "Jita" },
      "primaryRegion": { "id": 10000002, "name": "The Forge" },
      "statistics": {
        "totalKillmails": 125,
        "totalPilots": 456,
        "totalIskDestroyed": 150000000000,
        "teamA": { "pilots": 234, "iskDestroyed": 80000000000, "iskLost": 70000000000, "shipsDestroyed": 65, "shipsLost": 60 },
        "teamB": { "pilots": 222, "iskDestroyed": 70000000000, "iskLost": 80000000000, "shipsDestroyed": 60, "shipsLost": 65 }
      },
      "outcome": { "isDecisive": true, "winningTeam": "team_a" },
      "status": "closed"
    }
  ],
  "pagination": { "total": 125456, "limit": 50, "offset": 0, "hasMore": true }
}"#;

pub const DETAIL: &str = r#"{
  "id": "uuid",
  "startedAt": "2025-11-25T09:00:00Z",
  "endedAt": "2025-11-25T10:30:00Z",
  "duration": 5400,
  "primarySystem": { "id": 30000142, "name": "Jita", "security": 1.0 },
  "primaryRegion": { "id": 10000002, "name": "The Forge" },
  "statistics": {
    "totalKillmails": 125,
    "totalPilots": 456,
    "totalIskDestroyed": 150000000000,
    "teamA": {
      "pilots": 234, "iskDestroyed": 80000000000, "iskLost": 70000000000, "shipsDestroyed": 65, "shipsLost": 60,
      "topAlliances": [
        { "allianceId": 99001234, "allianceName": "Test Alliance", "pilots": 123, "iskDestroyed": 50000000000, "iskLost": 40000000000 }
      ],
      "shipTypes": { "587": { "name": "Rifter", "count": 45 }, "599": { "name": "Merlin", "count": 20 } }
    },
    "teamB": {
      "pilots": 222, "iskDestroyed": 70000000000, "iskLost": 80000000000, "shipsDestroyed": 60, "shipsLost": 65,
      "topAlliances": [
        { "allianceId": 99005678, "allianceName": "Enemy Alliance", "pilots": 111, "iskDestroyed": 40000000000, "iskLost": 50000000000 }
      ],
      "shipTypes": { "638": { "name": "Apocalypse", "count": 35 }, "640": { "name": "Raven", "count": 25 } }
    },
    "topKillers": [
      { "characterId": 12345678, "characterName": "Jane Smith", "team": "team_a", "kills": 15, "iskDestroyed": 5000000000 }
    ],
    "topLosers": [
      { "characterId": 87654321, "characterName": "Bob Jones", "team": "team_b", "deaths": 3, "iskLost": 8000000000 }
    ]
  },
  "outcome": { "isDecisive": true, "winningTeam": "team_a" },
  "status": "closed",
  "lastKillmailAt": "2025-11-25T10:28:00Z",
  "createdAt": "2025-11-25T09:05:00Z",
  "updatedAt": "2025-11-25T10:35:00Z"
}"#;

pub const PARTICIPANTS: &str = r#"{
  "participants": [
    {
      "characterId": 12345678,
      "characterName": "Jane Smith",
      "corporation": { "id": 87654321, "name": "Test Corp" },
      "alliance": { "id": 99001234, "name": "Test Alliance" },
      "team": "team_a",
      "shipsFlown": [
        { "shipTypeId": 587, "shipTypeName": "Rifter" },
        { "shipTypeId": 599, "shipTypeName": "Merlin" }
      ],
      "kills": 15,
      "deaths": 2,
      "damageDone": 15000000,
      "damageReceived": 5000000,
      "iskDestroyed": 5000000000,
      "iskLost": 1500000000,
      "firstSeenAt": "2025-11-25T09:05:00Z",
      "lastSeenAt": "2025-11-25T10:25:00Z"
    }
  ],
  "pagination": { "total": 456, "limit": 50, "offset": 0 }
}"#;

pub const KILLMAILS: &str = r#"{
  "killmails": [
    {
      "killmailId": 123456789,
      "killmailTime": "2025-11-25T09:15:00Z",
      "systemId": 30000142,
      "victimCharacterId": 95465499,
      "victimAllianceId": 99001234,
      "victimShipTypeId": 587,
      "victimTeam": "team_b",
      "iskDestroyed": 50000000
    }
  ],
  "pagination": { "total": 125, "limit": 50, "offset": 0 }
}"#;

pub const HEALTH: &str = r#"{
  "status": "healthy",
  "lastProcessed": "2025-11-25T10:00:00Z",
  "activeBattles": 15,
  "processingRate": 45.5
}"#;

pub const STATS: &str = r#"{
  "totalBattles": 125456,
  "activeBattles": 15,
  "last24Hours": {
    "battlesCreated": 234,
    "battlesUpdated": 456,
    "killmailsProcessed": 15234,
    "avgClusteringTime": 125
  }
}"#;

pub const RECLUSTER_ACCEPTED: &str = r#"{
  "jobId": "uuid",
  "status": "pending",
  "startDate": "2025-11-24",
  "endDate": "2025-11-24",
  "priority": "high"
}"#;

pub const RECLUSTER_JOB: &str = r#"{
  "jobId": "uuid",
  "status": "running",
  "startDate": "2025-11-24",
  "endDate": "2025-11-24",
  "progress": {
    "killmailsProcessed": 1250,
    "battlesCreated": 5,
    "battlesUpdated": 12,
    "battlesDeleted": 2
  },
  "startedAt": "2025-11-25T10:00:00Z"
}"#;

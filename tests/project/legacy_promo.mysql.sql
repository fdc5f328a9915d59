-- Legacy promo schema (MySQL 8 / MariaDB): the four tables of the old platform's
-- coupons and promotions, written from its SQLAlchemy models, ai-shifu
-- src/api/flaskr/service/promo/models.py (commit b3d3e4c89688539ac2c9f1ee8ba1a9aa968c2171):
-- Coupon, CouponUsage, PromoCampaign, PromoRedemption. Columns in model order; every
-- index=True column has its KEY ix_<table>_<column>; no DEFAULT anywhere (the models'
-- defaults are Python-side), so every INSERT names every column.
-- A database built by the old Alembic migrations instead differs in ways the adoption
-- does not look at: promo_coupons.name and updated_user_bid come last (added later, with
-- DEFAULT ''), and promo_promos.id / promo_redemptions.id carry COMMENT 'Unique ID'.
-- Used with tests/project/legacy_promo_rows.py by tests/project/test_promo_adoption.py.

CREATE TABLE promo_coupons (
  id BIGINT NOT NULL AUTO_INCREMENT,
  coupon_bid VARCHAR(36) NOT NULL COMMENT 'Coupon business identifier',
  name VARCHAR(255) NOT NULL COMMENT 'Coupon batch name',
  code VARCHAR(36) NOT NULL COMMENT 'Coupon code',
  discount_type SMALLINT NOT NULL COMMENT 'Coupon type: 701=fixed, 702=percent',
  usage_type SMALLINT NOT NULL COMMENT 'Coupon apply type: 801=one coupon code for multiple times, 802=one coupon code for one time',
  `value` DECIMAL(10,2) NOT NULL COMMENT 'Coupon value: would be calculated to amount by coupon type',
  `start` DATETIME NOT NULL COMMENT 'Coupon start time',
  `end` DATETIME NOT NULL COMMENT 'Coupon end time',
  channel VARCHAR(36) NOT NULL COMMENT 'Coupon channel',
  `filter` TEXT NOT NULL COMMENT 'Coupon filter: would be used to filter user and shifu',
  total_count BIGINT NOT NULL COMMENT 'Coupon total count',
  used_count BIGINT NOT NULL COMMENT 'Coupon used count',
  status SMALLINT NOT NULL COMMENT 'Status of the discount: 0=inactive, 1=active',
  deleted SMALLINT NOT NULL COMMENT 'Deletion flag: 0=active, 1=deleted',
  created_at DATETIME NOT NULL COMMENT 'Creation timestamp',
  created_user_bid VARCHAR(36) NOT NULL COMMENT 'Creator user business identifier',
  updated_at DATETIME NOT NULL COMMENT 'Update timestamp',
  updated_user_bid VARCHAR(36) NOT NULL COMMENT 'Last updater user business identifier',
  PRIMARY KEY (id),
  KEY ix_promo_coupons_code (code),
  KEY ix_promo_coupons_coupon_bid (coupon_bid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Promo coupons';

CREATE TABLE promo_coupon_usages (
  id BIGINT NOT NULL AUTO_INCREMENT,
  coupon_usage_bid VARCHAR(36) NOT NULL COMMENT 'Coupon usage business identifier',
  coupon_bid VARCHAR(36) NOT NULL COMMENT 'Coupon business identifier',
  name VARCHAR(255) NOT NULL COMMENT 'Coupon name',
  user_bid VARCHAR(36) NOT NULL COMMENT 'User business identifier',
  shifu_bid VARCHAR(36) NOT NULL COMMENT 'Shifu business identifier',
  order_bid VARCHAR(36) NOT NULL COMMENT 'Order business identifier',
  code VARCHAR(36) NOT NULL COMMENT 'Coupon code',
  discount_type SMALLINT NOT NULL COMMENT 'Coupon Type: 701=fixed, 702=percent',
  `value` DECIMAL(10,2) NOT NULL COMMENT 'Coupon value: would be calculated to amount by coupon type',
  status SMALLINT NOT NULL COMMENT 'Status of the record: 901=inactive, 902=active, 903=used, 904=timeout',
  deleted SMALLINT NOT NULL COMMENT 'Deletion flag: 0=active, 1=deleted',
  created_at DATETIME NOT NULL COMMENT 'Creation timestamp',
  updated_at DATETIME NOT NULL COMMENT 'Update timestamp',
  PRIMARY KEY (id),
  KEY ix_promo_coupon_usages_coupon_bid (coupon_bid),
  KEY ix_promo_coupon_usages_coupon_usage_bid (coupon_usage_bid),
  KEY ix_promo_coupon_usages_order_bid (order_bid),
  KEY ix_promo_coupon_usages_shifu_bid (shifu_bid),
  KEY ix_promo_coupon_usages_user_bid (user_bid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Promo coupon usages';

CREATE TABLE promo_promos (
  id BIGINT NOT NULL AUTO_INCREMENT,
  promo_bid VARCHAR(36) NOT NULL COMMENT 'Promotion business identifier',
  shifu_bid VARCHAR(36) NOT NULL COMMENT 'Shifu business identifier',
  name VARCHAR(255) NOT NULL COMMENT 'Promotion name',
  description TEXT NOT NULL COMMENT 'Promotion description',
  apply_type SMALLINT NOT NULL COMMENT 'Apply/join type: 2101=auto(eligible users get it automatically), 2102=event(granted on specific events), 2103=manual(granted manually)',
  status SMALLINT NOT NULL COMMENT 'Status: 0=inactive, 1=active',
  start_at DATETIME NOT NULL COMMENT 'Promotion start time(inclusive)',
  end_at DATETIME NOT NULL COMMENT 'Promotion end time(recommended exclusive): start_at <= now < end_at',
  discount_type SMALLINT NOT NULL COMMENT 'Discount type: 701=fixed, 702=percent',
  `value` DECIMAL(10,2) NOT NULL COMMENT 'Discount value: interpreted by discount_type(fixed = amount off; percent = percentage off)',
  channel VARCHAR(36) NOT NULL COMMENT 'Promotion channel(e.g., web/app/partner; business-defined)',
  `filter` TEXT NOT NULL COMMENT 'Promotion filter: JSON string for user/shifu targeting;{} means no restriction.',
  deleted SMALLINT NOT NULL COMMENT 'Deletion flag: 0=active, 1=deleted',
  created_at DATETIME NOT NULL COMMENT 'Creation timestamp',
  created_user_bid VARCHAR(36) NOT NULL COMMENT 'Creator user business identifier',
  updated_at DATETIME NOT NULL COMMENT 'Last update timestamp',
  updated_user_bid VARCHAR(36) NOT NULL COMMENT 'Last updater user business identifier',
  PRIMARY KEY (id),
  KEY ix_promo_promos_created_user_bid (created_user_bid),
  KEY ix_promo_promos_deleted (deleted),
  KEY ix_promo_promos_end_at (end_at),
  KEY ix_promo_promos_promo_bid (promo_bid),
  KEY ix_promo_promos_shifu_bid (shifu_bid),
  KEY ix_promo_promos_start_at (start_at),
  KEY ix_promo_promos_status (status),
  KEY ix_promo_promos_updated_user_bid (updated_user_bid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Promotion campaign definition table. Defines a discount campaign for a specific Shifu (join/apply type, time window, discount configuration, channel, and targeting filter). Stores configuration only; user participation/claim/redemption records are stored in table promo_redemptions.';

CREATE TABLE promo_redemptions (
  id BIGINT NOT NULL AUTO_INCREMENT,
  redemption_bid VARCHAR(36) NOT NULL COMMENT 'Promotion application business identifier',
  promo_bid VARCHAR(36) NOT NULL COMMENT 'Promotion business identifier',
  order_bid VARCHAR(36) NOT NULL COMMENT 'Order business identifier',
  user_bid VARCHAR(36) NOT NULL COMMENT 'User business identifier',
  shifu_bid VARCHAR(36) NOT NULL COMMENT 'Shifu business identifier',
  promo_name VARCHAR(255) NOT NULL COMMENT 'Promotion name snapshot',
  discount_type SMALLINT NOT NULL COMMENT 'Discount type snapshot: 701=fixed, 702=percent',
  `value` DECIMAL(10,2) NOT NULL COMMENT 'Discount value snapshot: interpreted by discount_type',
  discount_amount DECIMAL(10,2) NOT NULL COMMENT 'Discount amount actually applied to this order (computed result for this redemption)',
  status SMALLINT NOT NULL COMMENT 'Status: 4101=applied, 4102=voided',
  deleted SMALLINT NOT NULL COMMENT 'Deletion flag: 0=active, 1=deleted',
  created_at DATETIME NOT NULL COMMENT 'Creation timestamp',
  updated_at DATETIME NOT NULL COMMENT 'Last update timestamp',
  PRIMARY KEY (id),
  KEY ix_promo_redemptions_deleted (deleted),
  KEY ix_promo_redemptions_order_bid (order_bid),
  KEY ix_promo_redemptions_promo_bid (promo_bid),
  KEY ix_promo_redemptions_redemption_bid (redemption_bid),
  KEY ix_promo_redemptions_shifu_bid (shifu_bid),
  KEY ix_promo_redemptions_status (status),
  KEY ix_promo_redemptions_user_bid (user_bid)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='Promotion campaign redemption ledger. Records each time a user redeems/applies a promo campaign to an order, including snapshot fields (campaign name/discount type/value) and the computed discount amount. This table is transactional/immutable-by-intent; campaign definitions live in promo_promos.';
